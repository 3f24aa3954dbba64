"""BackendTLSPolicy on a GRPCRoute backend (conformance BackendTLSPolicyGRPCRoute, a
union of GRPCRoute and BackendTLSPolicy): the gateway speaks HTTP/2 over TLS (ALPN h2)
to a gRPC server that only accepts TLS, verifies it with the policy's CA and hostname,
and fails the call when the certificate does not match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
import trustme

from tests.e2e.conftest import CLASS_YAML, Backend, Turnout, free_port
from tests.e2e.test_features_backend_tls import policy
from tests.e2e.tlsutil import ca_pem, config_map_yaml, issue, service_yaml

HOST = "abc.example.com"

ROUTES = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: turnout
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc-tls, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: test.Echo, method: Echo}}]
    backendRefs: [{name: grpc-valid, port: 443}]
  - matches: [{method: {service: test.Echo, method: EchoTwo}}]
    backendRefs: [{name: grpc-host-mismatch, port: 443}]
"""
    + policy("grpc-valid", "grpc-valid")
    + policy("grpc-host-mismatch", "grpc-host-mismatch", hostname="mismatch.example.com")
)


def start_tls_grpc_server(cert: tuple[str, str]) -> tuple[grpc.Server, int]:
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

    class Handler(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
                return b"over-tls:" + request

            return grpc.unary_unary_rpc_method_handler(handle)

    server.add_generic_rpc_handlers((Handler(),))
    credentials = grpc.ssl_server_credentials([(cert[1].encode(), cert[0].encode())])
    server.add_secure_port(f"127.0.0.1:{port}", credentials)
    server.start()
    return server, port


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, module_turnout: Callable[..., Turnout]
) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("backendtls-grpc")
    ca = trustme.CA()
    server, port = start_tls_grpc_server(issue(ca, dns=[HOST]))
    try:
        backend = Backend("grpc-tls", "default", port, None)  # type: ignore[arg-type]
        text = ROUTES + config_map_yaml("backend-ca", "default", ca_pem(ca))
        for name in ("grpc-valid", "grpc-host-mismatch"):
            text += service_yaml(name, "default", [("btls", 443, backend)])
        (directory / "all.yaml").write_text(text)
        t = module_turnout(directory)
        yield t.address("gw")
    finally:
        server.stop(0)


def _call(address: str, method: str) -> tuple[grpc.StatusCode, bytes]:
    with grpc.insecure_channel(f"{address}:8080") as channel:
        stub = channel.unary_unary(f"/test.Echo/{method}")
        try:
            return grpc.StatusCode.OK, stub(b"ping", timeout=10)
        except grpc.RpcError as exc:
            return exc.code(), b""  # type: ignore[attr-defined]


def test_grpc_route_reencrypts_to_tls_backend(gateway: str) -> None:
    assert _call(gateway, "Echo") == (grpc.StatusCode.OK, b"over-tls:ping")


def test_grpc_route_backend_certificate_mismatch_fails(gateway: str) -> None:
    code, _ = _call(gateway, "EchoTwo")
    assert code != grpc.StatusCode.OK
