"""gRPC through `turnout run`: grpcio clients and servers, no protoc (raw-bytes messages).

The backend is :mod:`tests.e2e.grpc_backend` (one generic handler for every method),
reached through an HTTPRoute whose Service port has appProtocol kubernetes.io/h2c, so
the gateway speaks HTTP/2 to it. Local answers of the gateway to gRPC calls are
trailers-only gRPC responses (dataplane/h2stream.py ``grpc_status``).
"""

from __future__ import annotations

import signal
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import trustme

from tests.e2e.conftest import CLASS_YAML, Turnout, free_port, service_yaml, wait_for
from tests.e2e.grpc_backend import GrpcBackend, launch_grpc_backend
from tests.e2e.test_tls import secret_yaml

HTTPS_PORT = 8443


def gateway_yaml(backend: GrpcBackend) -> str:
    return (
        CLASS_YAML
        + f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: turnout
  listeners:
  - {{name: http, port: 8080, protocol: HTTP}}
  - {{name: https, port: {HTTPS_PORT}, protocol: HTTPS, tls: {{certificateRefs: [{{name: cert}}]}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: grpc, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /t.Echo/}}}}]
    backendRefs: [{{name: grpc, port: 9000}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {{add: [{{name: x-echo-gateway, value: turnout}}]}}
  - matches: [{{path: {{type: PathPrefix, value: /t.Timed/}}}}]
    timeouts: {{request: 300ms}}
    backendRefs: [{{name: grpc, port: 9000}}]
  - matches: [{{path: {{type: PathPrefix, value: /t.Empty/}}}}]
    backendRefs: [{{name: empty, port: 9000}}]
"""
        + service_yaml("grpc", "default", [backend], port=9000, app_protocol="kubernetes.io/h2c")
        + service_yaml("empty", "default", [], port=9000, app_protocol="kubernetes.io/h2c")
    )


@dataclass
class Setup:
    turnout: Turnout
    address: str
    ca: trustme.CA
    backend: GrpcBackend


def start(directory: Path, start_turnout: Callable[..., Turnout]) -> Setup:
    ca = trustme.CA()
    backend = launch_grpc_backend("grpc-a", free_port())
    (directory / "all.yaml").write_text(gateway_yaml(backend))
    t = start_turnout(directory)
    address = t.address("gw")
    (directory / "secret.yaml").write_text(secret_yaml(ca, "cert", address))
    wait_for(
        lambda: (
            t.find("Gateway", "gw")["status"]["listeners"][1]["attachedRoutes"] == 1
            and all(
                c["status"] == "True"
                for c in t.find("Gateway", "gw")["status"]["listeners"][1]["conditions"]
                if c["type"] == "Programmed"
            )
        ),
        what="the HTTPS listener",
    )
    return Setup(t, address, ca, backend)


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, module_turnout: Callable[..., Turnout]
) -> Iterator[Setup]:
    running = start(tmp_path_factory.mktemp("grpc"), module_turnout)
    yield running
    running.backend.stop()


@pytest.fixture
def channel(setup: Setup) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"{setup.address}:8080") as ch:
        yield ch


def metadata(items: object) -> dict[str, str]:
    return {m.key: m.value for m in items}  # type: ignore[attr-defined]


def test_backend_serves_all_four_kinds_directly(setup: Setup) -> None:
    """The test backend itself, without turnout: the baseline the other tests rely on."""
    with grpc.insecure_channel(f"127.0.0.1:{setup.backend.port}") as direct:
        assert direct.unary_unary("/t.Echo/Hello")(b"hi", timeout=5) == b"hi"


def test_route_to_h2c_service_is_resolved(setup: Setup) -> None:
    route = setup.turnout.find("HTTPRoute", "grpc")
    conditions = {c["type"]: c["status"] for c in route["status"]["parents"][0]["conditions"]}
    assert conditions == {"Accepted": "True", "ResolvedRefs": "True"}


def test_unary_with_metadata_both_ways(channel: grpc.Channel) -> None:
    reply, call = channel.unary_unary("/t.Echo/Hello").with_call(
        b"hello", metadata=[("x-echo-client", "abc")], timeout=5
    )
    assert reply == b"hello"
    initial = metadata(call.initial_metadata())
    assert initial["x-backend"] == "grpc-a"
    assert initial["x-method"] == "/t.Echo/Hello"
    assert initial["x-echo-client"] == "abc"  # request metadata reached the backend
    assert initial["x-echo-gateway"] == "turnout"  # the route's header filter applied
    assert metadata(call.trailing_metadata()) == {"x-backend": "grpc-a", "x-trailer": "done"}
    assert call.code() == grpc.StatusCode.OK


def test_server_streaming(channel: grpc.Channel) -> None:
    replies = channel.unary_stream("/t.Echo/ServerStream")(
        b"item", metadata=[("x-count", "50")], timeout=5
    )
    assert list(replies) == [b"item-%d" % i for i in range(50)]


def test_client_streaming(channel: grpc.Channel) -> None:
    parts = [b"%05d" % i for i in range(200)]
    reply = channel.stream_unary("/t.Echo/ClientStream")(iter(parts), timeout=5)
    assert reply == b"".join(parts)


def test_bidi_streaming_interleaved(channel: grpc.Channel) -> None:
    """Each reply comes back before the next request is sent: nothing waits for the end."""
    requests: list[bytes] = []
    ready = threading.Event()

    def generate() -> Iterator[bytes]:
        for i in range(20):
            request = b"m%d" % i
            requests.append(request)
            ready.clear()
            yield request
            assert ready.wait(5), f"no reply to {request!r} before the next request"

    replies = []
    for reply in channel.stream_stream("/t.Echo/BidiStream")(generate(), timeout=10):
        replies.append(reply)
        ready.set()
    assert replies == requests


def test_large_messages(channel: grpc.Channel) -> None:
    big = bytes(range(256)) * (3 * 1024 * 4)  # 3 MiB
    assert channel.unary_unary("/t.Echo/Big")(big, timeout=20) == big


def test_client_deadline_exceeded(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/t.Echo/Sleep")(b"2", timeout=0.3)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_route_timeout_is_deadline_exceeded(channel: grpc.Channel) -> None:
    """timeouts.request of the rule passes: the gateway answers DEADLINE_EXCEEDED itself."""
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/t.Timed/Sleep")(b"2", timeout=5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert info.value.details() == "gateway timeout"


def test_error_status_and_trailing_metadata_from_the_server(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/t.Echo/Fail")(b"PERMISSION_DENIED:not you", timeout=5)
    error = info.value
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "not you"
    assert metadata(error.trailing_metadata())["x-trailer"] == "done"


def test_unrouted_method_is_unimplemented(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/other.Service/Method")(b"x", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_service_without_endpoints_is_unavailable(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/t.Empty/Call")(b"x", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_many_concurrent_calls(channel: grpc.Channel) -> None:
    call = channel.unary_unary("/t.Echo/Concurrent")
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: call(b"%d" % i, timeout=10), range(400)))
    assert replies == [b"%d" % i for i in range(400)]


def test_grpc_over_tls_with_alpn_h2(setup: Setup) -> None:
    root = setup.ca.cert_pem.bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    target = f"{setup.address}:{HTTPS_PORT}"
    with grpc.secure_channel(target, credentials) as secure:
        reply, call = secure.unary_unary("/t.Echo/Secure").with_call(b"tls", timeout=5)
    assert reply == b"tls"
    assert metadata(call.trailing_metadata())["x-trailer"] == "done"
    assert ssl.HAS_ALPN


def test_sigterm_lets_calls_in_flight_finish(
    tmp_path: Path, turnout: Callable[..., Turnout]
) -> None:
    """GOAWAY on shutdown: a call in flight completes, the connection then closes."""
    running = start(tmp_path, turnout)
    try:
        with grpc.insecure_channel(f"{running.address}:8080") as ch:
            ch.unary_unary("/t.Echo/Warm")(b"x", timeout=5)
            future = ch.unary_unary("/t.Echo/Sleep").future(b"1", timeout=10)
            time.sleep(0.3)
            running.turnout.process.send_signal(signal.SIGTERM)
            assert future.result() == b"1"
        running.turnout.process.wait(15)
        assert "Traceback" not in running.turnout.logs(), running.turnout.logs()
    finally:
        running.backend.stop()
