"""TCPRoute through `turnout run` with real sockets (the GATEWAY-TCP conformance cases).

One `turnout run` serves the module, with one Gateway per scenario (each gets its own
loopback address). Backends are `turnout.demo.l4echo` processes that greet every
connection with their name, so a client knows which backend the gateway chose.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CLASS_YAML, Turnout, wait_for
from tests.e2e.l4 import (
    L4Backend,
    eventually,
    l4_backends,
    l4_service_yaml,
    rejected,
    tcp_connect,
    tcp_hello,
)

__all__ = ["l4_backends"]  # the fixture, re-exported for pytest


def gateway(name: str, listeners: str, namespace: str = "infra") -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  gatewayClassName: turnout
  listeners:
{listeners}
"""


def tcp_listener(name: str, port: int, from_: str = "Same") -> str:
    return (
        f"  - {{name: {name}, port: {port}, protocol: TCP, "
        f"allowedRoutes: {{namespaces: {{from: {from_}}}, kinds: [{{kind: TCPRoute}}]}}}}\n"
    )


def tcp_route(
    name: str,
    parent: str,
    backends: str,
    *,
    namespace: str = "infra",
    created: str | None = None,
    version: str = "v1",
) -> str:
    stamp = f", creationTimestamp: '{created}'" if created else ""
    return f"""---
apiVersion: gateway.networking.k8s.io/{version}
kind: TCPRoute
metadata: {{name: {name}, namespace: {namespace}{stamp}}}
spec:
  parentRefs: [{parent}]
  rules: [{{backendRefs: [{backends}]}}]
"""


def grant(namespace: str, from_namespace: str, kind: str = "TCPRoute") -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: allow-{from_namespace}, namespace: {namespace}}}
spec:
  from: [{{group: gateway.networking.k8s.io, kind: {kind}, namespace: {from_namespace}}}]
  to: [{{group: "", kind: Service}}]
"""


@pytest.fixture(scope="module")
def echo(l4_backends: Callable[..., L4Backend]) -> dict[str, L4Backend]:
    return {name: l4_backends(name) for name in ("echo-a", "echo-b", "echo-c")}


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory,
    module_turnout: Callable[..., Turnout],
    echo: dict[str, L4Backend],
) -> Turnout:
    a, b, c = echo["echo-a"], echo["echo-b"], echo["echo-c"]
    docs = [
        CLASS_YAML,
        l4_service_yaml("svc-a", "infra", [a], 3000),
        l4_service_yaml("svc-b", "infra", [b], 3000),
        l4_service_yaml("svc-c", "infra", [c], 3000),
        l4_service_yaml("svc-a", "backends", [a], 3000),
        # conformance TCPRouteParentRefPortAndSectionName
        gateway(
            "by-listener",
            tcp_listener("one", 9300) + tcp_listener("two", 9301) + tcp_listener("three", 9302),
        ),
        tcp_route("by-port", "{name: by-listener, port: 9300}", "{name: svc-a, port: 3000}"),
        tcp_route(
            "by-section", "{name: by-listener, sectionName: two}", "{name: svc-b, port: 3000}"
        ),
        tcp_route(
            "by-both",
            "{name: by-listener, sectionName: three, port: 9302}",
            "{name: svc-c, port: 3000}",
            version="v1alpha2",
        ),
        # conformance TCPRouteMultipleRoutesAttachment
        gateway("multi", tcp_listener("tcp", 9310)),
        tcp_route(
            "older",
            "{name: multi, sectionName: tcp}",
            "{name: svc-a, port: 3000}",
            created="2026-01-01T00:00:00Z",
        ),
        tcp_route(
            "newer",
            "{name: multi, sectionName: tcp}",
            "{name: svc-b, port: 3000}",
            created="2026-01-01T00:00:01Z",
        ),
        # conformance TCPRouteWeightedRouting (70/30/0)
        gateway("weights", tcp_listener("tcp", 9320)),
        tcp_route(
            "weighted",
            "{name: weights}",
            "{name: svc-a, port: 3000, weight: 70}, {name: svc-b, port: 3000, weight: 30}, "
            "{name: svc-c, port: 3000, weight: 0}",
        ),
        # conformance TCPRouteInvalidBackendRefNonexistent
        gateway("invalid", tcp_listener("tcp", 9330)),
        tcp_route("nonexistent", "{name: invalid}", "{name: no-such-service, port: 3000}"),
        # conformance TCPRouteInvalidCrossNamespaceBackendRef / TCPRouteReferenceGrant
        gateway("xns", tcp_listener("denied", 9340, "All") + tcp_listener("granted", 9341, "All")),
        tcp_route(
            "no-grant",
            "{name: xns, namespace: infra, sectionName: denied}",
            "{name: svc-a, namespace: backends, port: 3000}",
            namespace="app",
        ),
        tcp_route(
            "with-grant",
            "{name: xns, namespace: infra, sectionName: granted}",
            "{name: svc-a, namespace: backends, port: 3000}",
            namespace="app2",
        ),
        grant("backends", "app2"),
    ]
    directory = tmp_path_factory.mktemp("tcp")
    (directory / "config.yaml").write_text("".join(docs))
    return module_turnout(directory)


def _parent_conditions(t: Turnout, name: str, namespace: str = "infra") -> dict[str, Any]:
    item = t.find("TCPRoute", name, namespace)
    (parent,) = item["status"]["parents"]
    return {c["type"]: c for c in parent["conditions"]}


def _listener(t: Turnout, gateway: str, listener: str) -> dict[str, Any]:
    item = t.find("Gateway", gateway, "infra")
    return next(ln for ln in item["status"]["listeners"] if ln["name"] == listener)


def test_route_by_port_and_section_name(gw: Turnout) -> None:
    address = gw.address("by-listener", "infra")
    for route, port, backend in (
        ("by-port", 9300, "echo-a"),
        ("by-section", 9301, "echo-b"),
        ("by-both", 9302, "echo-c"),
    ):
        conditions = _parent_conditions(gw, route)
        assert conditions["Accepted"]["status"] == "True", conditions
        assert conditions["ResolvedRefs"]["status"] == "True", conditions
        eventually(lambda p=port, b=backend: tcp_hello(address, p)["backend"] == b)
    listener = _listener(gw, "by-listener", "one")
    assert listener["supportedKinds"] == [
        {"group": "gateway.networking.k8s.io", "kind": "TCPRoute"}
    ]
    assert listener["attachedRoutes"] == 1
    programmed = next(c for c in listener["conditions"] if c["type"] == "Programmed")
    assert programmed["status"] == "True", programmed


def test_echo_and_half_close(gw: Turnout) -> None:
    address = gw.address("by-listener", "infra")
    stream = tcp_connect(address, 9300)
    try:
        assert stream.line()["backend"] == "echo-a"
        payload = bytes(range(256)) * 64
        stream.sock.sendall(payload)
        assert stream.exactly(len(payload)) == payload
        # Half-close: our FIN reaches the backend, whose answer still comes back.
        stream.sock.shutdown(socket.SHUT_WR)
        assert stream.line() == {"eof": True, "received": len(payload)}
        assert stream.sock.recv(1) == b""  # then the backend closes, and so does the gateway
    finally:
        stream.close()


def test_large_stream_both_ways(gw: Turnout) -> None:
    """8 MiB through the splice while reading concurrently: flow control loses nothing."""
    address = gw.address("by-listener", "infra")
    stream = tcp_connect(address, 9301, timeout=20)
    payload = bytes(i % 251 for i in range(1 << 20)) * 8
    try:
        assert stream.line()["backend"] == "echo-b"
        sender = threading.Thread(target=stream.sock.sendall, args=(payload,))
        sender.start()
        received = stream.exactly(len(payload))
        sender.join()
        assert received == payload
    finally:
        stream.close()


def test_multiple_routes_only_oldest_gets_traffic(gw: Turnout) -> None:
    for route in ("older", "newer"):
        assert _parent_conditions(gw, route)["Accepted"]["status"] == "True"
    assert _listener(gw, "multi", "tcp")["attachedRoutes"] == 2
    address = gw.address("multi", "infra")
    seen = Counter(tcp_hello(address, 9310)["backend"] for _ in range(20))
    assert seen == {"echo-a": 20}


def test_weighted_backends(gw: Turnout) -> None:
    address = gw.address("weights", "infra")
    total = 300
    seen = Counter(tcp_hello(address, 9320)["backend"] for _ in range(total))
    assert seen["echo-c"] == 0  # weight 0: never
    assert seen["echo-a"] + seen["echo-b"] == total
    # 70/30: the share is within 10 points (4 standard deviations at 300 connections).
    assert abs(seen["echo-a"] / total - 0.7) < 0.10, seen


def test_nonexistent_backend_rejects_connections(gw: Turnout) -> None:
    conditions = _parent_conditions(gw, "nonexistent")
    assert conditions["Accepted"]["status"] == "True"
    assert conditions["ResolvedRefs"]["reason"] == "BackendNotFound"
    address = gw.address("invalid", "infra")
    assert all(rejected(lambda: tcp_connect(address, 9330)) for _ in range(5))


def test_cross_namespace_backend_needs_reference_grant(gw: Turnout) -> None:
    denied = _parent_conditions(gw, "no-grant", "app")
    assert denied["Accepted"]["status"] == "True"
    assert denied["ResolvedRefs"]["reason"] == "RefNotPermitted"
    granted = _parent_conditions(gw, "with-grant", "app2")
    assert granted["ResolvedRefs"]["status"] == "True"
    address = gw.address("xns", "infra")
    assert rejected(lambda: tcp_connect(address, 9340))
    assert tcp_hello(address, 9341)["backend"] == "echo-a"


def test_reload_keeps_established_connections(
    tmp_path: Path,
    turnout: Callable[..., Turnout],
    echo: dict[str, L4Backend],
) -> None:
    """A new configuration sends new connections elsewhere; open ones keep their backend."""
    a, b = echo["echo-a"], echo["echo-b"]
    services = l4_service_yaml("svc-a", "infra", [a], 3000) + l4_service_yaml(
        "svc-b", "infra", [b], 3000
    )
    config = tmp_path / "config.yaml"

    def write(backend: str) -> None:
        route = tcp_route("r", "{name: gw}", f"{{name: {backend}, port: 3000}}")
        config.write_text(CLASS_YAML + services + gateway("gw", tcp_listener("tcp", 9400)) + route)

    write("svc-a")
    t = turnout(tmp_path)
    address = t.address("gw", "infra")
    eventually(lambda: tcp_hello(address, 9400)["backend"] == "echo-a")
    stream = tcp_connect(address, 9400)
    try:
        assert stream.line()["backend"] == "echo-a"
        write("svc-b")
        wait_for(lambda: tcp_hello(address, 9400)["backend"] == "echo-b", what="the new route")
        stream.sock.sendall(b"still here")
        assert stream.exactly(10) == b"still here"
        stream.sock.shutdown(socket.SHUT_WR)
        assert stream.line() == {"eof": True, "received": 10}
    finally:
        stream.close()
