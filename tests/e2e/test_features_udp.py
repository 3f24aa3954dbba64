"""UDPRoute through `turnout run` with real datagrams (the GATEWAY-UDP conformance cases).

Backends are `turnout.demo.l4echo --udp`: each answers a datagram with its name and the
address it came from, which is the gateway's upstream socket for that client session.
The module's gateway runs with ``--udp-idle-timeout 0.5`` so idle expiry can be
observed quickly.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import CLASS_YAML, Turnout
from tests.e2e.l4 import L4Backend, eventually, l4_backends, l4_service_yaml, udp_ask

__all__ = ["l4_backends"]  # the fixture, re-exported for pytest

IDLE_TIMEOUT = 0.5


def gateway(name: str, listeners: str) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: infra}}
spec:
  gatewayClassName: turnout
  listeners:
{listeners}"""


def udp_route(name: str, parent: str, backends: str, namespace: str = "infra") -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  parentRefs: [{parent}]
  rules: [{{backendRefs: [{backends}]}}]
"""


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory,
    module_turnout: Callable[..., Turnout],
    l4_backends: Callable[..., L4Backend],
) -> Turnout:
    a, b, c = (l4_backends(f"udp-{x}", udp=True) for x in "abc")
    listener = (
        "  - {name: dns, port: 5300, protocol: UDP, "
        "allowedRoutes: {namespaces: {from: All}, kinds: [{kind: UDPRoute}]}}\n"
    )
    docs = [
        CLASS_YAML,
        l4_service_yaml("udp-a", "infra", [a], 53, "UDP"),
        l4_service_yaml("udp-b", "infra", [b], 53, "UDP"),
        l4_service_yaml("udp-c", "infra", [c], 53, "UDP"),
        l4_service_yaml("udp-a", "backends", [a], 53, "UDP"),
        # conformance UDPRouteSimple
        gateway("simple", listener),
        udp_route("simple", "{name: simple}", "{name: udp-a, port: 53}"),
        # conformance UDPRouteWeightedRouting
        gateway("weights", listener),
        udp_route(
            "weighted",
            "{name: weights}",
            "{name: udp-a, port: 53, weight: 70}, {name: udp-b, port: 53, weight: 30}, "
            "{name: udp-c, port: 53, weight: 0}",
        ),
        # conformance UDPRouteInvalidCrossNamespaceBackendRef
        gateway("xns", listener),
        udp_route(
            "no-grant",
            "{name: xns, namespace: infra}",
            "{name: udp-a, namespace: backends, port: 53}",
            namespace="app",
        ),
    ]
    directory = tmp_path_factory.mktemp("udp")
    (directory / "config.yaml").write_text("".join(docs))
    return module_turnout(directory, "--udp-idle-timeout", str(IDLE_TIMEOUT))


def _client() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def _conditions(t: Turnout, route: str, namespace: str = "infra") -> dict[str, Any]:
    (parent,) = t.find("UDPRoute", route, namespace)["status"]["parents"]
    return {c["type"]: c for c in parent["conditions"]}


def test_udp_echo_with_several_clients(gw: Turnout) -> None:
    conditions = _conditions(gw, "simple")
    assert conditions["Accepted"]["status"] == "True"
    listener = gw.find("Gateway", "simple", "infra")["status"]["listeners"][0]
    assert listener["supportedKinds"] == [
        {"group": "gateway.networking.k8s.io", "kind": "UDPRoute"}
    ]
    assert {c["type"]: c["status"] for c in listener["conditions"]}["Programmed"] == "True"
    address = gw.address("simple", "infra")
    eventually(lambda: udp_ask(address, 5300, "hello")["backend"] == "udp-a")
    clients = [_client() for _ in range(5)]
    try:
        peers = []
        for i, client in enumerate(clients):
            answer = udp_ask(address, 5300, f"from client {i}", client)
            assert (answer["backend"], answer["data"]) == ("udp-a", f"from client {i}")
            peers.append(answer["peer"])
            # The same client keeps its session: the backend sees the same peer.
            assert udp_ask(address, 5300, "again", client)["peer"] == answer["peer"]
        assert len(set(peers)) == len(clients)  # one upstream socket per client
    finally:
        for client in clients:
            client.close()


def test_idle_sessions_expire(gw: Turnout) -> None:
    address = gw.address("simple", "infra")
    client = _client()
    try:
        first = udp_ask(address, 5300, "one", client)["peer"]
        assert udp_ask(address, 5300, "two", client)["peer"] == first
        time.sleep(IDLE_TIMEOUT * 3)  # idle past the timeout (sweeps run every 1/4 of it)
        assert udp_ask(address, 5300, "three", client)["peer"] != first
    finally:
        client.close()


def test_weighted_backends(gw: Turnout) -> None:
    address = gw.address("weights", "infra")
    eventually(lambda: udp_ask(address, 5300, "x")["backend"] in ("udp-a", "udp-b"))
    total = 300
    seen: Counter[str] = Counter()
    for _ in range(total):  # a new client socket is a new session: a new weighted pick
        seen[udp_ask(address, 5300, "w")["backend"]] += 1
    assert seen["udp-c"] == 0
    assert seen["udp-a"] + seen["udp-b"] == total
    assert abs(seen["udp-a"] / total - 0.7) < 0.10, seen


def test_cross_namespace_backend_without_grant_drops(gw: Turnout) -> None:
    conditions = _conditions(gw, "no-grant", "app")
    assert conditions["ResolvedRefs"]["reason"] == "RefNotPermitted"
    address = gw.address("xns", "infra")
    with pytest.raises(TimeoutError):
        udp_ask(address, 5300, "anyone?", timeout=0.5)
