"""GRPCRoute through `turnout run`, with grpcio clients and servers (h2c both ways).

One `turnout run` (with --port-offset, so port 80 binds 20080) serves every route of
this module, each on its own hostname, which the clients send as :authority. The
backends are :mod:`tests.e2e.grpc_backend` processes: every answer carries initial
metadata ``x-backend`` (who answered), ``x-method`` (the path it was called with) and
every request header starting with ``x-echo-`` echoed back, so a test sees what
reached the backend. Mirror targets are in-process grpcio servers that record calls.
The route manifests follow the conformance tests (grpcroute-*.yaml) where one exists.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme

from tests.e2e.conftest import CLASS_YAML, Turnout, free_port, service_yaml
from tests.e2e.grpc_backend import GrpcBackend, launch_grpc_backend
from tests.e2e.test_tls import secret_yaml

OFFSET = 20000
PORT_80, PORT_443 = 80 + OFFSET, 443 + OFFSET
SECURE = "secure.example.com"
ECHO = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
H2C = "kubernetes.io/h2c"

GATEWAYS = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: turnout
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - name: https
    port: 443
    protocol: HTTPS
    hostname: secure.example.com
    tls: {certificateRefs: [{name: grpc-cert}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: hosts, namespace: infra}
spec:
  gatewayClassName: turnout
  listeners:
  - {name: listener-1, port: 80, protocol: HTTP, hostname: bar.com}
  - {name: listener-2, port: 80, protocol: HTTP, hostname: foo.bar.com}
  - {name: listener-3, port: 80, protocol: HTTP, hostname: "*.bar.com"}
  - {name: listener-4, port: 80, protocol: HTTP, hostname: "*.foo.com"}
"""
)


def grpc_route(name: str, rules: str, *, host: str | None = None, parents: str = "") -> str:
    hostnames = f"\n  hostnames: [{host}]" if host else ""
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: {name}, namespace: infra}}
spec:
  parentRefs: {parents or "[{name: gw}]"}{hostnames}
  rules:
{rules}
"""


def to(*backends: str) -> str:
    return "[" + ", ".join(f"{{name: {b}, port: 8080}}" for b in backends) + "]"


def method(service: str | None = None, name: str | None = None, regex: bool = False) -> str:
    parts = ["type: RegularExpression"] if regex else []
    if service is not None:
        parts.append(f"service: '{service}'")
    if name is not None:
        parts.append(f"method: '{name}'")
    return "{method: {" + ", ".join(parts) + "}}"


# GRPCExactMethodMatching (conformance).
EXACT = f"""  - matches: [{method(ECHO, "Echo")}]
    backendRefs: {to("grpc-v1")}
  - matches: [{method(ECHO, "EchoTwo")}]
    backendRefs: {to("grpc-v2")}"""

# Implementation-specific GEP-1016 matchers: service only, method only, RE2.
FAREWELL_RE = r"pkg\.v[0-9]+\.Farewell"
OTHER_RE = r"other\..*"
METHODS = f"""  - matches: [{method("pkg.v1.Greeter")}]
    backendRefs: {to("grpc-v1")}
  - matches: [{method(FAREWELL_RE, "Say.*", regex=True)}]
    backendRefs: {to("grpc-v2")}
  - matches: [{method(name="Check")}]
    backendRefs: {to("grpc-v3")}
  - matches: [{method(OTHER_RE, regex=True)}, {method(name="List|Watch", regex=True)}]
    backendRefs: {to("grpc-v2")}"""

# GRPCRouteHeaderMatching (conformance), headers exact and RE2.
BUILD_RE = r"v[0-9]+\.[0-9]+"
HEADERS = f"""  - matches: [{{headers: [{{name: version, value: one}}]}}]
    backendRefs: {to("grpc-v1")}
  - matches: [{{headers: [{{name: version, value: two}}]}}]
    backendRefs: {to("grpc-v2")}
  - matches: [{{headers: [{{name: version, value: two}}, {{name: color, value: orange}}]}}]
    backendRefs: {to("grpc-v1")}
  - matches: [{{headers: [{{name: color, value: blue}}]}}, {{headers: [{{name: color, value: green}}]}}]
    backendRefs: {to("grpc-v1")}
  - matches: [{{headers: [{{name: color, value: red}}]}}, {{headers: [{{name: color, value: yellow}}]}}]
    backendRefs: {to("grpc-v2")}
  - matches: [{{headers: [{{name: build, type: RegularExpression, value: '{BUILD_RE}'}}]}}]
    backendRefs: {to("grpc-v3")}"""

# GRPCRouteWeight (conformance): 70/30/0.
WEIGHTS = """  - backendRefs:
    - {name: grpc-v1, port: 8080, weight: 70}
    - {name: grpc-v2, port: 8080, weight: 30}
    - {name: grpc-v3, port: 8080, weight: 0}"""


def header_filter(kind: str, modifier: str) -> str:
    key = kind[0].lower() + kind[1:]
    return f"{{type: {kind}, {key}: {modifier}}}"


# GRPCRouteRequestHeaderModifier (conformance), with x-echo- names the backend echoes.
MODIFIERS = f"""  - matches: [{method(ECHO, "Set")}]
    filters: [{header_filter("RequestHeaderModifier", "{set: [{name: X-Echo-Set, value: set-overwrites-values}]}")}]
    backendRefs: {to("grpc-v1")}
  - matches: [{method(ECHO, "Add")}]
    filters: [{header_filter("RequestHeaderModifier", "{add: [{name: X-Echo-Add, value: add-appends-values}]}")}]
    backendRefs: {to("grpc-v1")}
  - matches: [{method(ECHO, "Remove")}]
    filters: [{header_filter("RequestHeaderModifier", "{remove: [X-Echo-Remove]}")}]
    backendRefs: {to("grpc-v1")}
  - matches: [{method(ECHO, "Response")}]
    filters:
    - {header_filter("ResponseHeaderModifier", "{set: [{name: x-backend, value: overwritten}], add: [{name: x-added, value: by-gateway}], remove: [x-method]}")}
    backendRefs: {to("grpc-v1")}
  - matches: [{method(ECHO, "PerBackend")}]
    backendRefs:
    - name: grpc-v1
      port: 8080
      filters: [{header_filter("RequestHeaderModifier", "{set: [{name: x-echo-chosen, value: v1}]}")}]
    - name: grpc-v2
      port: 8080
      filters: [{header_filter("RequestHeaderModifier", "{set: [{name: x-echo-chosen, value: v2}]}")}]"""

MIRROR = f"""  - filters:
    - {{type: RequestMirror, requestMirror: {{backendRef: {{name: grpc-mirror, port: 8080}}}}}}
    backendRefs: {to("grpc-v1")}"""

# GRPCRouteNamedRule (conformance).
NAMED = f"""  - name: named-rule
    matches: [{method(ECHO, "Echo")}]
    backendRefs: {to("grpc-v1")}
  - matches: [{method(ECHO, "EchoTwo")}]
    backendRefs: {to("grpc-v2")}"""

INVALID = f"""  - matches: [{method(ECHO, "Missing")}]
    backendRefs: {to("no-such-service")}
  - matches: [{method(ECHO, "Half")}]
    backendRefs: {to("grpc-v1", "no-such-service")}
  - matches: [{method(ECHO, "Nothing")}]"""

INFERRED = f"""  - backendRefs: {to("grpc-plain")}"""

# GEP-1016 "Cross Serving": the older HTTPRoute keeps conflict.example.com, the
# GRPCRoute is not accepted there (creationTimestamps written in files are kept).
CONFLICT = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: http-first, namespace: infra, creationTimestamp: "2025-01-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [conflict.example.com]
  rules: [{backendRefs: [{name: grpc-v2, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc-second, namespace: infra, creationTimestamp: "2025-02-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [conflict.example.com]
  rules: [{backendRefs: [{name: grpc-v1, port: 8080}]}]
"""

# GEP-709 for GRPCRoute: "granted" lets GRPCRoutes from infra in, "denied" has no grant.
GRANT = """---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: grpc-from-infra, namespace: granted}
spec:
  from: [{group: gateway.networking.k8s.io, kind: GRPCRoute, namespace: infra}]
  to: [{group: "", kind: Service}]
"""
CROSS_NAMESPACE = f"""  - matches: [{method("cross.Granted")}]
    backendRefs: [{{name: grpc-granted, namespace: granted, port: 8080}}]
  - matches: [{method("cross.Denied")}]
    backendRefs: [{{name: grpc-denied, namespace: denied, port: 8080}}]"""


def hostname_routes() -> str:
    """GRPCRouteListenerHostnameMatching (conformance): one route per listener(s)."""

    def parent(*sections: str) -> str:
        refs = ", ".join(f"{{name: hosts, sectionName: {s}}}" for s in sections)
        return f"[{refs}]"

    return (
        grpc_route("backend-v1", f"  - backendRefs: {to('grpc-v1')}", parents=parent("listener-1"))
        + grpc_route(
            "backend-v2", f"  - backendRefs: {to('grpc-v2')}", parents=parent("listener-2")
        )
        + grpc_route(
            "backend-v3",
            f"  - backendRefs: {to('grpc-v3')}",
            parents=parent("listener-3", "listener-4"),
        )
    )


# --- an in-process mirror target ---------------------------------------------------------------


@dataclass
class MirrorTarget:
    server: grpc.Server
    port: int
    address: str = "127.0.0.1"
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settled(self, quiet: float = 0.3, timeout: float = 10.0) -> int:
        """The call count once no new copy arrived for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        count, since = len(self.calls), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if len(self.calls) != count:
                count, since = len(self.calls), time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return count


def start_mirror_target() -> MirrorTarget:
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    target = MirrorTarget(server, port)

    class Handler(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            method_name: str = details.method  # type: ignore[attr-defined]

            def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
                metadata = {m.key: str(m.value) for m in context.invocation_metadata()}
                with target.lock:
                    target.calls.append((method_name, metadata))
                return b"mirror"

            return grpc.unary_unary_rpc_method_handler(handle)

    server.add_generic_rpc_handlers((Handler(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return target


# --- the environment ---------------------------------------------------------------------------


@dataclass
class Reply:
    code: grpc.StatusCode
    body: bytes | None
    headers: dict[str, str]
    details: str | None


@dataclass
class Env:
    turnout: Turnout
    address: str
    hosts_address: str
    mirror: MirrorTarget
    ca: trustme.CA
    channels: dict[tuple[str, str], grpc.Channel] = field(default_factory=dict)

    def channel(self, authority: str, address: str | None = None) -> grpc.Channel:
        """One channel per (address, authority), kept for the module (h2c, prior knowledge)."""
        key = (address or self.address, authority)
        if key not in self.channels:
            self.channels[key] = grpc.insecure_channel(
                f"{key[0]}:{PORT_80}", options=[("grpc.default_authority", authority)]
            )
        return self.channels[key]

    def call(
        self,
        authority: str,
        path: str,
        *,
        metadata: list[tuple[str, str]] | None = None,
        address: str | None = None,
        body: bytes = b"hello",
    ) -> Reply:
        stub = self.channel(authority, address).unary_unary(path)
        try:
            reply, call = stub.with_call(body, metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            return Reply(exc.code(), None, _metadata(exc.initial_metadata()), exc.details())  # type: ignore[attr-defined]
        return Reply(call.code(), reply, _metadata(call.initial_metadata()), None)

    def backend(self, authority: str, path: str, **kw: Any) -> str:
        reply = self.call(authority, path, **kw)
        assert reply.code == grpc.StatusCode.OK, (authority, path, reply)
        assert reply.headers["x-method"] == path, reply
        return reply.headers["x-backend"]


def _metadata(items: Any) -> dict[str, str]:
    return {m.key: str(m.value) for m in items or ()}


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, module_turnout: Callable[..., Turnout]
) -> Iterator[Env]:
    directory: Path = tmp_path_factory.mktemp("grpcroute")
    backends: list[GrpcBackend] = []
    mirror = start_mirror_target()
    ca = trustme.CA()
    try:
        text = GATEWAYS + secret_yaml(ca, "grpc-cert", SECURE, namespace="infra")
        for version in ("v1", "v2", "v3"):
            backend = launch_grpc_backend(f"grpc-{version}", free_port(), "infra")
            backends.append(backend)
            text += service_yaml(f"grpc-{version}", "infra", [backend], app_protocol=H2C)
        # No appProtocol: a GRPCRoute backend is h2c by inference.
        text += service_yaml("grpc-plain", "infra", [backends[0]])
        text += service_yaml("grpc-mirror", "infra", [mirror], app_protocol=H2C)
        text += grpc_route("exact-matching", EXACT, host="exact.example.com")
        text += grpc_route("methods", METHODS, host="methods.example.com")
        text += grpc_route("grpc-header-matching", HEADERS, host="headers.example.com")
        text += grpc_route("weighted-backends", WEIGHTS, host="weights.example.com")
        text += grpc_route("modifiers", MODIFIERS, host="modifiers.example.com")
        text += grpc_route("mirror", MIRROR, host="mirror.example.com")
        text += grpc_route("grpc-named-rules", NAMED, host="named.example.com")
        text += grpc_route("invalid", INVALID, host="invalid.example.com")
        text += grpc_route("inferred", INFERRED, host="inferred.example.com")
        text += service_yaml("grpc-granted", "granted", [backends[2]], app_protocol=H2C)
        text += service_yaml("grpc-denied", "denied", [backends[2]], app_protocol=H2C)
        text += GRANT + grpc_route("cross-namespace", CROSS_NAMESPACE, host="cross.example.com")
        text += CONFLICT
        text += grpc_route(
            "secure",
            f"  - backendRefs: {to('grpc-v2')}",
            host=SECURE,
            parents="[{name: gw, sectionName: https}]",
        )
        text += hostname_routes()
        (directory / "all.yaml").write_text(text)
        t = module_turnout(directory, "--port-offset", str(OFFSET))
        env = Env(t, t.address("gw", "infra"), t.address("hosts", "infra"), mirror, ca)
        yield env
        for channel in env.channels.values():
            channel.close()
    finally:
        mirror.server.stop(0)
        for backend in backends:
            backend.stop()


def _route_conditions(env: Env, name: str) -> list[dict[str, str]]:
    route = env.turnout.find("GRPCRoute", name, "infra")
    return [cond for parent in route["status"]["parents"] for cond in parent["conditions"]]


def test_routes_accepted_and_counted(env: Env) -> None:
    """Every route is Accepted with resolved refs (except the one built to fail), and
    the HTTP listener counts GRPCRoutes in attachedRoutes."""
    for name in ("exact-matching", "methods", "grpc-header-matching", "weighted-backends"):
        conds = {c["type"]: c["status"] for c in _route_conditions(env, name)}
        assert conds == {"Accepted": "True", "ResolvedRefs": "True"}, (name, conds)
    invalid = {c["type"]: c for c in _route_conditions(env, "invalid")}
    assert invalid["Accepted"]["status"] == "True"
    assert invalid["ResolvedRefs"]["reason"] == "BackendNotFound"
    gateway = env.turnout.find("Gateway", "gw", "infra")
    listener = gateway["status"]["listeners"][0]
    assert {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"} in listener["supportedKinds"]
    # 10 GRPCRoutes and the HTTPRoute that won conflict.example.com (its GRPCRoute lost).
    assert listener["attachedRoutes"] == 11


def test_exact_method_matching(env: Env) -> None:
    """GRPCExactMethodMatching: Echo -> v1, EchoTwo -> v2, EchoThree -> UNIMPLEMENTED."""
    host = "exact.example.com"
    assert env.backend(host, f"/{ECHO}/Echo") == "grpc-v1"
    assert env.backend(host, f"/{ECHO}/EchoTwo") == "grpc-v2"
    assert env.call(host, f"/{ECHO}/EchoThree").code == grpc.StatusCode.UNIMPLEMENTED


def test_service_method_and_regex_matching(env: Env) -> None:
    """Service-only, method-only and RE2 matches (GEP-1016 matcher table)."""
    host = "methods.example.com"
    assert env.backend(host, "/pkg.v1.Greeter/SayHello") == "grpc-v1"
    assert env.backend(host, "/pkg.v1.Greeter/Anything") == "grpc-v1"
    assert env.backend(host, "/pkg.v7.Farewell/SayBye") == "grpc-v2"
    assert env.backend(host, "/grpc.health.v1.Health/Check") == "grpc-v3"
    assert env.backend(host, "/other.Svc/Get") == "grpc-v2"
    assert env.backend(host, "/some.Svc/Watch") == "grpc-v2"
    for path in (
        "/pkg.v1.GreeterX/SayHello",  # service prefix is a whole name, not a string prefix
        "/pkg.vX.Farewell/SayBye",  # regex is full-match
        "/pkg.v7.Farewell/Bye",
        "/grpc.health.v1.Health/CheckAll",
        "/pkg.v1.greeter/SayHello",  # case-sensitive
    ):
        assert env.call(host, path).code == grpc.StatusCode.UNIMPLEMENTED, path


def test_header_matching(env: Env) -> None:
    """GRPCRouteHeaderMatching, plus an RE2 header match."""
    host = "headers.example.com"
    path = f"/{ECHO}/Echo"
    cases = [
        ([("version", "one")], "grpc-v1"),
        ([("version", "two")], "grpc-v2"),
        ([("version", "two"), ("color", "orange")], "grpc-v1"),
        ([("color", "blue")], "grpc-v1"),
        ([("color", "green")], "grpc-v1"),
        ([("color", "red")], "grpc-v2"),
        ([("color", "yellow")], "grpc-v2"),
        ([("build", "v1.22")], "grpc-v3"),
    ]
    for metadata, expected in cases:
        assert env.backend(host, path, metadata=metadata) == expected, metadata
    for metadata in ([("version", "three")], [("color", "purple")], [("build", "v1")], []):
        assert env.call(host, path, metadata=metadata).code == grpc.StatusCode.UNIMPLEMENTED


def test_listener_hostname_matching(env: Env) -> None:
    """GRPCRouteListenerHostnameMatching: the listener hostname picks the route."""
    cases = {
        "bar.com": "grpc-v1",
        "foo.bar.com": "grpc-v2",
        "baz.bar.com": "grpc-v3",
        "boo.bar.com": "grpc-v3",
        "multiple.prefixes.bar.com": "grpc-v3",
        "multiple.prefixes.foo.com": "grpc-v3",
        "x.foo.com": "grpc-v3",
    }
    for authority, expected in cases.items():
        served = env.backend(authority, f"/{ECHO}/Echo", address=env.hosts_address)
        assert served == expected, authority
    for authority in ("foo.com", "no.matching.host"):
        reply = env.call(authority, f"/{ECHO}/Echo", address=env.hosts_address)
        assert reply.code == grpc.StatusCode.UNIMPLEMENTED, authority


def test_weighted_backends(env: Env) -> None:
    """GRPCRouteWeight: 70/30/0 over 200 calls (binomial bounds far from flaky: the
    v1 share has a standard deviation of about 0.03)."""
    seen = collections.Counter(
        env.backend("weights.example.com", f"/{ECHO}/Echo") for _ in range(200)
    )
    assert seen["grpc-v3"] == 0
    assert seen["grpc-v1"] + seen["grpc-v2"] == 200
    assert 0.55 <= seen["grpc-v1"] / 200 <= 0.85, seen


def test_request_header_modifier(env: Env) -> None:
    """GRPCRouteRequestHeaderModifier: set overwrites, add appends, remove removes
    (the backend echoes x-echo-* request metadata back)."""
    host = "modifiers.example.com"
    reply = env.call(host, f"/{ECHO}/Set", metadata=[("x-echo-set", "client")])
    assert reply.headers["x-echo-set"] == "set-overwrites-values"
    reply = env.call(host, f"/{ECHO}/Add", metadata=[("x-echo-add", "client")])
    assert reply.headers["x-echo-add"] in (
        "client,add-appends-values",
        "client, add-appends-values",
    )
    reply = env.call(
        host, f"/{ECHO}/Remove", metadata=[("x-echo-remove", "gone"), ("x-echo-keep", "kept")]
    )
    assert "x-echo-remove" not in reply.headers
    assert reply.headers["x-echo-keep"] == "kept"


def test_response_header_modifier(env: Env) -> None:
    reply = env.call("modifiers.example.com", f"/{ECHO}/Response")
    assert reply.code == grpc.StatusCode.OK and reply.body == b"hello"
    assert reply.headers["x-backend"] == "overwritten"
    assert reply.headers["x-added"] == "by-gateway"
    assert "x-method" not in reply.headers


def test_backend_level_request_header_modifier(env: Env) -> None:
    """A backendRef's filters run only when that backend is chosen."""
    for _ in range(20):
        reply = env.call("modifiers.example.com", f"/{ECHO}/PerBackend")
        assert reply.code == grpc.StatusCode.OK
        assert reply.headers["x-echo-chosen"] == reply.headers["x-backend"].removeprefix("grpc-")


def test_request_mirror(env: Env) -> None:
    """RequestMirror: the mirror gets a copy of each call (with its body), the client
    only the real backend's answer."""
    before = len(env.mirror.calls)
    for i in range(5):
        reply = env.call("mirror.example.com", f"/{ECHO}/Mirrored", body=b"copy-%d" % i)
        assert reply.code == grpc.StatusCode.OK and reply.body == b"copy-%d" % i
        assert reply.headers["x-backend"] == "grpc-v1"
    assert env.mirror.settled() - before == 5
    assert {path for path, _ in env.mirror.calls[before:]} == {f"/{ECHO}/Mirrored"}


def test_invalid_backend_is_unavailable(env: Env) -> None:
    """GRPCRouteRule.BackendRefs: calls for an invalid backend get UNAVAILABLE, in
    proportion when only some backends are invalid; a rule without backends too."""
    host = "invalid.example.com"
    assert env.call(host, f"/{ECHO}/Missing").code == grpc.StatusCode.UNAVAILABLE
    assert env.call(host, f"/{ECHO}/Nothing").code == grpc.StatusCode.UNAVAILABLE
    codes = collections.Counter(env.call(host, f"/{ECHO}/Half").code for _ in range(100))
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
    assert 25 <= codes[grpc.StatusCode.OK] <= 75, codes


def test_named_rules(env: Env) -> None:
    """GRPCRouteNamedRule: a rule name does not change routing, and the route is
    accepted with it."""
    host = "named.example.com"
    assert env.backend(host, f"/{ECHO}/Echo") == "grpc-v1"
    assert env.backend(host, f"/{ECHO}/EchoTwo") == "grpc-v2"
    conds = {c["type"]: c["status"] for c in _route_conditions(env, "grpc-named-rules")}
    assert conds == {"Accepted": "True", "ResolvedRefs": "True"}


def test_backend_without_app_protocol_is_h2c(env: Env) -> None:
    """A Service port without appProtocol is reached over h2c for a GRPCRoute."""
    assert env.backend("inferred.example.com", "/any.Service/Method") == "grpc-v1"


def test_streaming_calls(env: Env) -> None:
    """Server, client and bidirectional streams pass through a GRPCRoute."""
    channel = env.channel("methods.example.com")
    stream = channel.unary_stream("/pkg.v1.Greeter/ServerStream")(
        b"s", metadata=[("x-count", "3")], timeout=10
    )
    assert list(stream) == [b"s-0", b"s-1", b"s-2"]
    joined = channel.stream_unary("/pkg.v1.Greeter/ClientStream")(iter([b"a", b"b"]), timeout=10)
    assert joined == b"ab"
    bidi = channel.stream_stream("/pkg.v1.Greeter/BidiStream")(iter([b"x", b"y"]), timeout=10)
    assert list(bidi) == [b"x", b"y"]


def test_https_listener_alpn_h2(env: Env) -> None:
    """A GRPCRoute on an HTTPS listener: TLS with ALPN h2 (grpcio requires it), routed
    by :authority like on HTTP."""
    credentials = grpc.ssl_channel_credentials(root_certificates=env.ca.cert_pem.bytes())
    options = [("grpc.ssl_target_name_override", SECURE), ("grpc.default_authority", SECURE)]
    with grpc.secure_channel(f"{env.address}:{PORT_443}", credentials, options) as channel:
        reply, call = channel.unary_unary("/secure.Svc/Call").with_call(b"tls", timeout=10)
    assert reply == b"tls"
    assert dict(_metadata(call.initial_metadata()))["x-backend"] == "grpc-v2"


def test_cross_namespace_backend_needs_reference_grant(env: Env) -> None:
    """A backendRef into another namespace works with a ReferenceGrant naming GRPCRoute;
    without one the route says RefNotPermitted and the calls get UNAVAILABLE."""
    host = "cross.example.com"
    assert env.backend(host, "/cross.Granted/Call") == "grpc-v3"
    assert env.call(host, "/cross.Denied/Call").code == grpc.StatusCode.UNAVAILABLE
    conds = {c["type"]: c for c in _route_conditions(env, "cross-namespace")}
    assert conds["Accepted"]["status"] == "True"
    assert conds["ResolvedRefs"]["status"] == "False"
    assert conds["ResolvedRefs"]["reason"] == "RefNotPermitted"


def test_httproute_and_grpcroute_do_not_share_a_hostname(env: Env) -> None:
    """GRPCRoute.spec.hostnames: the older HTTPRoute keeps the hostname, the GRPCRoute
    is Accepted=False there, and calls for that host are served by the HTTPRoute."""
    conds = {c["type"]: c for c in _route_conditions(env, "grpc-second")}
    assert conds["Accepted"]["status"] == "False"
    assert conds["Accepted"]["reason"] == "NotAllowedByListeners"
    assert "HTTPRoute infra/http-first" in conds["Accepted"]["message"]
    winner = env.turnout.find("HTTPRoute", "http-first", "infra")
    (parent,) = winner["status"]["parents"]
    assert {c["type"]: c["status"] for c in parent["conditions"]}["Accepted"] == "True"
    assert env.backend("conflict.example.com", f"/{ECHO}/Echo") == "grpc-v2"
