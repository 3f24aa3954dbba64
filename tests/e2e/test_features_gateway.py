"""Gateway and attachment features through `turnout run`, as the conformance tests check
them: listener ports, listener isolation, hostname intersection, parentRef ports, named
rules, static and empty addresses.

One `turnout run` serves the module. Every Gateway gets its own loopback address from
the test's pool, so each can listen on 8080 without colliding with the others.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    CLASS_YAML,
    Backend,
    Response,
    Turnout,
    request,
    service_yaml,
    wait_for,
)

CLASS = CLASS_YAML


def gateway(name: str, listeners: str, addresses: str = "") -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: infra}}
spec:
  gatewayClassName: turnout
{addresses}  listeners:
{listeners}
"""


def route(name: str, parent_refs: str, rules: str, hostnames: str = "[]") -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: infra}}
spec:
  parentRefs: {parent_refs}
  hostnames: {hostnames}
  rules:
{rules}
"""


def to(version: str, path: str | None = None) -> str:
    match = f"\n    matches: [{{path: {{type: PathPrefix, value: {path}}}}}]" if path else ""
    return f"  - backendRefs: [{{name: infra-backend-{version}, port: 8080}}]{match}"


PORT_8080 = gateway("port-8080", "  - {name: http, port: 8080, protocol: HTTP}") + route(
    "attached-to-8080", "[{name: port-8080, sectionName: http}]", to("v1")
)

ISOLATION_LISTENERS = {
    "empty-hostname": None,
    "wildcard-example-com": "*.example.com",
    "wildcard-foo-example-com": "*.foo.example.com",
    "abc-foo-example-com": "abc.foo.example.com",
}
ISOLATION = gateway(
    "isolation",
    "\n".join(
        f"  - {{name: {name}, port: 8080, protocol: HTTP"
        + (f", hostname: '{host}'" if host else "")
        + "}"
        for name, host in ISOLATION_LISTENERS.items()
    ),
) + "".join(
    route(
        f"attaches-to-{name}", f"[{{name: isolation, sectionName: {name}}}]", to("v1", f"/{name}")
    )
    for name in ISOLATION_LISTENERS
)

INTERSECTION = gateway(
    "intersection",
    """  - {name: listener-1, port: 8080, protocol: HTTP, hostname: very.specific.com}
  - {name: listener-2, port: 8080, protocol: HTTP, hostname: '*.wildcard.io'}
  - {name: listener-3, port: 8080, protocol: HTTP, hostname: '*.anotherwildcard.io'}""",
)
_INTERSECT_PARENT = "[{name: intersection}]"
INTERSECTION += (
    route(
        "specific-host-matches-listener-specific-host",
        _INTERSECT_PARENT,
        to("v1", "/s1"),
        "[non.matching.com, '*.nonmatchingwildcard.io', very.specific.com]",
    )
    + route(
        "specific-host-matches-listener-wildcard-host",
        _INTERSECT_PARENT,
        to("v2", "/s2"),
        "[non.matching.com, wildcard.io, foo.wildcard.io, bar.wildcard.io, foo.bar.wildcard.io]",
    )
    + route(
        "wildcard-host-matches-listener-specific-host",
        _INTERSECT_PARENT,
        to("v3", "/s3"),
        "[non.matching.com, '*.specific.com']",
    )
    + route(
        "wildcard-host-matches-listener-wildcard-host",
        _INTERSECT_PARENT,
        to("v1", "/s4"),
        "['*.anotherwildcard.io']",
    )
    + route(
        "no-intersecting-hosts",
        _INTERSECT_PARENT,
        to("v2", "/s5"),
        "[specific.but.wrong.com, wildcard.io]",
    )
)

PARENT_PORTS = (
    gateway(
        "listener-ports",
        """  - {name: listener-1, port: 8080, protocol: HTTP, hostname: foo.com}
  - {name: listener-2, port: 8081, protocol: HTTP, hostname: foo.com}
  - {name: listener-3, port: 8081, protocol: HTTP, hostname: bar.com}
  - {name: listener-4, port: 8082, protocol: HTTP, hostname: foo.com}
  - {name: listener-5, port: 8082, protocol: HTTP, hostname: bar.com}""",
    )
    + route("backend-v1", "[{name: listener-ports, port: 8080}]", to("v1"))
    + route("backend-v2", "[{name: listener-ports, port: 8081}]", to("v2"))
    + route("backend-v3", "[{name: listener-ports, port: 8082, sectionName: listener-4}]", to("v3"))
    + route("port-81", "[{name: listener-ports, port: 81}]", to("v1"))
)

NAMED_RULES = gateway("named", "  - {name: http, port: 8080, protocol: HTTP}") + route(
    "http-named-rules",
    "[{name: named}]",
    """  - name: named-rule
    matches: [{path: {type: PathPrefix, value: /named}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /unnamed}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]""",
)

EMPTY_ADDRESS = gateway(
    "empty-address",
    "  - {name: http, port: 8080, protocol: HTTP}",
    "  addresses: [{type: IPAddress}]\n",
) + route("on-empty-address", "[{name: empty-address}]", to("v2"))


@dataclass
class Env:
    turnout: Turnout
    directory: Path

    def address(self, gw: str) -> str:
        return self.turnout.address(gw, "infra")

    def who(self, gw: str, port: int, host: str, path: str = "/") -> str:
        resp = request(self.address(gw), port, path, host=host)
        return answer(resp)


def answer(resp: Response) -> str:
    """The pod that answered (without its infra-backend- prefix), or the status code."""
    if resp.status != 200:
        return str(resp.status)
    return str(resp.json()["pod"]).removeprefix("infra-backend-")


def conditions(entry: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in entry["conditions"]}


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Env:
    directory: Path = tmp_path_factory.mktemp("gateway")
    text = CLASS
    for version in ("v1", "v2", "v3"):
        name = f"infra-backend-{version}"
        text += service_yaml(name, "infra", [module_backends(name, "infra")])
    text += PORT_8080 + ISOLATION + INTERSECTION + PARENT_PORTS + NAMED_RULES + EMPTY_ADDRESS
    (directory / "all.yaml").write_text(text)
    return Env(module_turnout(directory), directory)


def test_gateway_port_8080(env: Env) -> None:
    """GatewayPort8080 (gateway-with-attached-routes-with-port-8080): a listener on 8080
    is programmed, counts its route and serves it."""
    gw = env.turnout.find("Gateway", "port-8080", "infra")
    listener = gw["status"]["listeners"][0]
    assert listener["attachedRoutes"] == 1
    assert conditions(listener)["Programmed"][0] == "True"
    assert conditions(gw["status"])["Programmed"] == ("True", "Programmed")
    assert env.who("port-8080", 8080, "any.example", "/x") == "v1"


def test_http_listener_isolation(env: Env) -> None:
    """GatewayHTTPListenerIsolation: a request only sees the routes of the most specific
    listener matching its host, never those of a less specific one."""
    hosts = {
        "empty-hostname": "bar.com",
        "wildcard-example-com": "bar.example.com",
        "wildcard-foo-example-com": "bar.foo.example.com",
        "abc-foo-example-com": "abc.foo.example.com",
    }
    for listener, host in hosts.items():
        for path_of in ISOLATION_LISTENERS:
            want = "v1" if path_of == listener else "404"
            assert env.who("isolation", 8080, host, f"/{path_of}") == want, (host, path_of)


def test_hostname_intersection(env: Env) -> None:
    """HTTPRouteHostnameIntersection: effective hostnames are route ∩ listener."""
    cases = [
        ("very.specific.com", "/s1", "v1"),
        ("very.specific.com:1234", "/s1", "v1"),
        ("non.matching.com", "/s1", "404"),
        ("foo.nonmatchingwildcard.io", "/s1", "404"),
        ("foo.wildcard.io", "/s1", "404"),
        ("foo.wildcard.io", "/s2", "v2"),
        ("bar.wildcard.io", "/s2", "v2"),
        ("foo.bar.wildcard.io", "/s2", "v2"),
        ("wildcard.io", "/s2", "404"),
        ("non.matching.com", "/s2", "404"),
        ("very.specific.com", "/s2", "404"),
        ("very.specific.com", "/s3", "v3"),
        ("foo.specific.com", "/s3", "404"),
        ("non.matching.com", "/s3", "404"),
        ("foo.anotherwildcard.io", "/s4", "v1"),
        ("bar.anotherwildcard.io", "/s4", "v1"),
        ("foo.bar.anotherwildcard.io", "/s4", "v1"),
        ("anotherwildcard.io", "/s4", "404"),
        ("specific.but.wrong.com", "/s5", "404"),
        ("wildcard.io", "/s5", "404"),
    ]
    for host, path, want in cases:
        assert env.who("intersection", 8080, host, path) == want, (host, path)
    gw = env.turnout.find("Gateway", "intersection", "infra")
    attached = {ln["name"]: ln["attachedRoutes"] for ln in gw["status"]["listeners"]}
    assert attached == {"listener-1": 2, "listener-2": 1, "listener-3": 1}
    route = env.turnout.find("HTTPRoute", "no-intersecting-hosts", "infra")
    assert conditions(route["status"]["parents"][0])["Accepted"] == (
        "False",
        "NoMatchingListenerHostname",
    )


def test_parent_ref_port(env: Env) -> None:
    """HTTPRouteParentRefPort (httproute-listener-port-matching): parentRef.port attaches
    to the listeners on that port, optionally narrowed by sectionName."""
    cases = [
        (8080, "foo.com", "v1"),
        (8081, "foo.com:8081", "v2"),
        (8081, "bar.com:8081", "v2"),
        (8082, "foo.com:8082", "v3"),
        (8082, "bar.com:8082", "404"),  # listener-5 is not selected by sectionName
        (8080, "bar.com", "404"),  # no listener for bar.com on 8080
    ]
    for port, host, want in cases:
        assert env.who("listener-ports", port, host) == want, (port, host)
    gw = env.turnout.find("Gateway", "listener-ports", "infra")
    attached = {ln["name"]: ln["attachedRoutes"] for ln in gw["status"]["listeners"]}
    assert attached == {
        "listener-1": 1,
        "listener-2": 1,
        "listener-3": 1,
        "listener-4": 1,
        "listener-5": 0,
    }


def test_parent_ref_port_without_listener(env: Env) -> None:
    """HTTPRouteInvalidParentRefNotMatchingListenerPort (HTTPRouteDestinationPortMatching):
    a parentRef port no listener uses gives NoMatchingParent and attaches nowhere."""
    route = env.turnout.find("HTTPRoute", "port-81", "infra")
    parent = route["status"]["parents"][0]
    assert conditions(parent)["Accepted"] == ("False", "NoMatchingParent")
    # Its resolvable backends stay ResolvedRefs=True (only the attachment failed).
    assert conditions(parent)["ResolvedRefs"][0] == "True"


def test_named_route_rule(env: Env) -> None:
    """HTTPRouteNamedRouteRule: rules[].name is accepted; named and unnamed rules serve."""
    route = env.turnout.find("HTTPRoute", "http-named-rules", "infra")
    parent = route["status"]["parents"][0]
    assert conditions(parent)["Accepted"] == ("True", "Accepted")
    assert conditions(parent)["ResolvedRefs"] == ("True", "ResolvedRefs")
    assert env.who("named", 8080, "x.example", "/named") == "v1"
    assert env.who("named", 8080, "x.example", "/unnamed") == "v2"


def test_address_without_value_is_assigned(env: Env) -> None:
    """GatewayAddressEmpty (gateway-optional-address-value): a type without a value gets
    an address from the pool, and the Gateway is programmed on it."""
    gw = env.turnout.find("Gateway", "empty-address", "infra")
    assert conditions(gw["status"])["Accepted"] == ("True", "Accepted")
    assert conditions(gw["status"])["Programmed"] == ("True", "Programmed")
    (address,) = gw["status"]["addresses"]
    assert address["type"] == "IPAddress"
    assert ipaddress.ip_address(address["value"]) in ipaddress.ip_network(env.turnout.pool)
    assert env.who("empty-address", 8080, "x.example") == "v2"


def test_static_addresses(env: Env) -> None:
    """GatewayStaticAddresses: unsupported type => Accepted=False/UnsupportedAddress;
    unusable value => Accepted, Programmed=False/AddressNotUsable, only usable addresses
    in status; usable value => served there. Other Gateways keep their addresses."""
    pool = ipaddress.ip_network(env.turnout.pool)
    before = {gw: env.address(gw) for gw in ("port-8080", "named", "empty-address")}
    taken = set(before.values()) | {
        a["value"]
        for item in env.turnout.status()
        if item["kind"] == "Gateway"
        for a in item.get("status", {}).get("addresses", [])
    }
    usable = next(str(h) for h in reversed(list(pool.hosts())) if str(h) not in taken)
    unusable = "192.0.2.10"  # TEST-NET-1, outside any loopback pool
    invalid = "  - {type: test/fake-invalid-type, value: 'fake address teehee!'}\n"
    rest = f"  - {{value: '{unusable}'}}\n  - {{type: IPAddress, value: '{usable}'}}\n"

    def write(addresses: str) -> None:
        text = gateway(
            "static", "  - {name: http, port: 8080, protocol: HTTP}", "  addresses:\n" + addresses
        ) + route("on-static", "[{name: static}]", to("v3"))
        tmp = env.directory / ".static.yaml.tmp"
        tmp.write_text(text)
        tmp.rename(env.directory / "static.yaml")

    def gateway_conditions() -> dict[str, tuple[str, str]]:
        for item in env.turnout.status():
            if item["kind"] == "Gateway" and item["metadata"]["name"] == "static":
                return conditions(item["status"])
        return {}  # not loaded yet

    def programmed_message() -> str:
        gw = env.turnout.find("Gateway", "static", "infra")
        return str(
            next(c["message"] for c in gw["status"]["conditions"] if c["type"] == "Programmed")
        )

    def has(kind: str, status: str, reason: str) -> Callable[[], bool]:
        return lambda: gateway_conditions().get(kind) == (status, reason)

    write(invalid + rest)
    wait_for(has("Accepted", "False", "UnsupportedAddress"), timeout=10, what="UnsupportedAddress")
    assert "addresses" not in env.turnout.find("Gateway", "static", "infra")["status"]

    write(rest)
    wait_for(has("Programmed", "False", "AddressNotUsable"), timeout=10, what="AddressNotUsable")
    gw = env.turnout.find("Gateway", "static", "infra")
    assert conditions(gw["status"])["Accepted"] == ("True", "Accepted")
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": usable}]
    assert f"{unusable} is not a host address of the address pool" in programmed_message()
    # Served on the usable address meanwhile.
    assert answer(request(usable, 8080, "/", host="x.example")) == "v3"

    write(f"  - {{type: IPAddress, value: '{usable}'}}\n")
    wait_for(has("Programmed", "True", "Programmed"), timeout=10, what="Programmed")
    gw = env.turnout.find("Gateway", "static", "infra")
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": usable}]
    listener = gw["status"]["listeners"][0]
    assert conditions(listener)["Accepted"][0] == "True"
    assert conditions(listener)["ResolvedRefs"][0] == "True"
    assert answer(request(usable, 8080, "/", host="x.example")) == "v3"

    # Another Gateway's address is taken: AddressNotUsable naming the holder.
    write(f"  - {{value: '{before['named']}'}}\n")
    wait_for(has("Programmed", "False", "AddressNotUsable"), timeout=10, what="taken address")
    assert "used by Gateway infra/named" in programmed_message()
    assert "addresses" not in env.turnout.find("Gateway", "static", "infra")["status"]

    # Reloads never moved the other Gateways, and they still serve.
    assert {gw: env.address(gw) for gw in before} == before
    assert env.who("named", 8080, "x.example", "/named") == "v1"
