"""Gateway and GatewayClass validation: schema and CEL rules, failing and passing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.resources.docs import V1, assert_error, assert_valid, gateway_doc

HTTP = {"name": "http", "port": 80, "protocol": "HTTP"}
CERT = {"certificateRefs": [{"name": "cert"}]}


def https(**extra: Any) -> dict[str, Any]:
    return {"name": "https", "port": 443, "protocol": "HTTPS", "tls": CERT, **extra}


L0 = "spec.listeners[0]"

CASES: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    (
        "port range",
        gateway_doc({**HTTP, "port": 0}),
        f"{L0}.port",
        "must be between 1 and 65535",
        gateway_doc({**HTTP, "port": 65535}),
    ),
    (
        "port too high",
        gateway_doc({**HTTP, "port": 65536}),
        f"{L0}.port",
        "must be between 1 and 65535",
        gateway_doc({**HTTP, "port": 1}),
    ),
    (
        "listener name is a section name",
        gateway_doc({**HTTP, "name": "Bad_Name"}),
        f"{L0}.name",
        "is not a valid section name",
        gateway_doc({**HTTP, "name": "good.name-1"}),
    ),
    (
        "listener hostname pattern",
        gateway_doc({**HTTP, "hostname": "Foo.example.com"}),
        f"{L0}.hostname",
        "is not a valid hostname",
        gateway_doc({**HTTP, "hostname": "*.example.com"}),
    ),
    (
        "listener hostname no IP",
        gateway_doc({**HTTP, "hostname": "10.0.0.1"}),
        f"{L0}.hostname",
        "IP address",
        gateway_doc({**HTTP, "hostname": "ten.example"}),
    ),
    (
        "listener hostname length",
        gateway_doc({**HTTP, "hostname": ("a" * 62 + ".") * 4 + "com"}),
        f"{L0}.hostname",
        "at most 253 characters",
        gateway_doc({**HTTP, "hostname": ("a" * 62 + ".") * 3 + "com"}),
    ),
    (
        "protocol pattern",
        gateway_doc({**HTTP, "protocol": "example.com"}),
        f"{L0}.protocol",
        "is not a valid protocol",
        gateway_doc({**HTTP, "protocol": "example.com/custom"}),
    ),
    (
        "tls forbidden for HTTP",
        gateway_doc({**HTTP, "tls": CERT}),
        f"{L0}.tls",
        "must not be set for protocol HTTP",
        gateway_doc(HTTP),
    ),
    (
        "tls forbidden for TCP",
        gateway_doc({"name": "tcp", "port": 9000, "protocol": "TCP", "tls": CERT}),
        f"{L0}.tls",
        "must not be set for protocol TCP",
        gateway_doc({"name": "tcp", "port": 9000, "protocol": "TCP"}),
    ),
    (
        "tls forbidden for UDP",
        gateway_doc({"name": "udp", "port": 53, "protocol": "UDP", "tls": CERT}),
        f"{L0}.tls",
        "must not be set for protocol UDP",
        gateway_doc({"name": "udp", "port": 53, "protocol": "UDP"}),
    ),
    (
        "tls required for HTTPS",
        gateway_doc({"name": "https", "port": 443, "protocol": "HTTPS"}),
        f"{L0}.tls",
        "required for protocol HTTPS",
        gateway_doc(https()),
    ),
    (
        "tls required for TLS",
        gateway_doc({"name": "tls", "port": 443, "protocol": "TLS"}),
        f"{L0}.tls",
        "required for protocol TLS",
        gateway_doc(
            {"name": "tls", "port": 443, "protocol": "TLS", "tls": {"mode": "Passthrough"}}
        ),
    ),
    (
        "HTTPS must terminate",
        gateway_doc(https(tls={"mode": "Passthrough"})),
        f"{L0}.tls.mode",
        "must be Terminate for protocol HTTPS",
        gateway_doc(https(tls={"mode": "Terminate", **CERT})),
    ),
    (
        "tls mode enum",
        gateway_doc(https(tls={"mode": "Reencrypt", **CERT})),
        f"{L0}.tls.mode",
        "must be one of",
        gateway_doc(https()),
    ),
    (
        "certificateRefs required for Terminate",
        gateway_doc(https(tls={"mode": "Terminate"})),
        f"{L0}.tls.certificateRefs",
        "at least one certificateRef is required",
        gateway_doc(https(tls={"options": {"example.com/cert-source": "vault"}})),
    ),
    (
        "hostname forbidden for TCP",
        gateway_doc({"name": "tcp", "port": 9000, "protocol": "TCP", "hostname": "a.example"}),
        f"{L0}.hostname",
        "must not be set for protocol TCP",
        gateway_doc({"name": "tcp", "port": 9000, "protocol": "TCP"}),
    ),
    (
        "hostname forbidden for UDP",
        gateway_doc({"name": "udp", "port": 53, "protocol": "UDP", "hostname": "a.example"}),
        f"{L0}.hostname",
        "must not be set for protocol UDP",
        gateway_doc({"name": "udp", "port": 53, "protocol": "UDP"}),
    ),
    (
        "listener names unique",
        gateway_doc(HTTP, {**HTTP, "port": 8080}),
        "spec.listeners[1].name",
        "duplicate listener name 'http'",
        gateway_doc(HTTP, {**HTTP, "name": "http-alt", "port": 8080}),
    ),
    (
        "port/protocol/hostname unique",
        gateway_doc(HTTP, {**HTTP, "name": "other"}),
        "spec.listeners[1]",
        "same combination of port, protocol and hostname",
        gateway_doc(HTTP, {**HTTP, "name": "other", "hostname": "a.example"}),
    ),
    (
        "at least one listener",
        {**gateway_doc(), "spec": {"gatewayClassName": "c", "listeners": []}},
        "spec.listeners",
        "must have at least 1 item",
        gateway_doc(),
    ),
    (
        "at most 64 listeners",
        gateway_doc(*({**HTTP, "name": f"l{i}", "port": 1000 + i} for i in range(65))),
        "spec.listeners",
        "must have at most 64 items",
        gateway_doc(*({**HTTP, "name": f"l{i}", "port": 1000 + i} for i in range(64))),
    ),
    (
        "allowedRoutes from enum",
        gateway_doc({**HTTP, "allowedRoutes": {"namespaces": {"from": "None"}}}),
        f"{L0}.allowedRoutes.namespaces.from",
        "must be one of",
        gateway_doc({**HTTP, "allowedRoutes": {"namespaces": {"from": "All"}}}),
    ),
    (
        "allowedRoutes kinds max 8",
        gateway_doc({**HTTP, "allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}] * 9}}),
        f"{L0}.allowedRoutes.kinds",
        "must have at most 8 items",
        gateway_doc({**HTTP, "allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}] * 8}}),
    ),
    (
        "selector In needs values",
        gateway_doc(
            {
                **HTTP,
                "allowedRoutes": {
                    "namespaces": {
                        "from": "Selector",
                        "selector": {"matchExpressions": [{"key": "team", "operator": "In"}]},
                    }
                },
            }
        ),
        f"{L0}.allowedRoutes.namespaces.selector.matchExpressions[0].values",
        "must not be empty when operator is In",
        gateway_doc(
            {
                **HTTP,
                "allowedRoutes": {
                    "namespaces": {
                        "from": "Selector",
                        "selector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
                    }
                },
            }
        ),
    ),
    (
        "certificateRef namespace is a label",
        gateway_doc(https(tls={"certificateRefs": [{"name": "c", "namespace": "Certs"}]})),
        f"{L0}.tls.certificateRefs[0].namespace",
        "is not a valid namespace name",
        gateway_doc(https(tls={"certificateRefs": [{"name": "c", "namespace": "certs"}]})),
    ),
    (
        "IPAddress value",
        gateway_doc(addresses=[{"value": "not-an-ip"}]),
        "spec.addresses[0].value",
        "is not a valid IPv4 or IPv6 address",
        gateway_doc(addresses=[{"value": "192.0.2.1"}, {"value": "2001:db8::1"}]),
    ),
    (
        "IPAddress values unique",
        gateway_doc(addresses=[{"value": "192.0.2.1"}, {"value": "192.0.2.1"}]),
        "spec.addresses[1].value",
        "duplicate IPAddress value",
        gateway_doc(addresses=[{"value": "192.0.2.1"}, {"value": "192.0.2.2"}]),
    ),
    (
        "Hostname address value",
        gateway_doc(addresses=[{"type": "Hostname", "value": "UPPER"}]),
        "spec.addresses[0].value",
        "is not a valid hostname",
        gateway_doc(addresses=[{"type": "Hostname", "value": "lb.example.com"}]),
    ),
    (
        "infrastructure label key",
        gateway_doc(infrastructure={"labels": {"bad key": "x"}}),
        "spec.infrastructure.labels[bad key]",
        "is not a valid key",
        gateway_doc(infrastructure={"labels": {"example.com/team": "x"}}),
    ),
    (
        "infrastructure max 8 labels",
        gateway_doc(infrastructure={"labels": {f"l{i}": "x" for i in range(9)}}),
        "spec.infrastructure.labels",
        "must have at most 8 entries",
        gateway_doc(infrastructure={"labels": {f"l{i}": "x" for i in range(8)}}),
    ),
    (
        "gatewayClassName required",
        {**gateway_doc(), "spec": {"listeners": [HTTP]}},
        "spec.gatewayClassName",
        "required",
        gateway_doc(),
    ),
    (
        "metadata.name is a DNS subdomain",
        {**gateway_doc(), "metadata": {"name": "My_Gateway"}},
        "metadata.name",
        "is not a valid RFC 1123 subdomain",
        {**gateway_doc(), "metadata": {"name": "my.gateway"}},
    ),
    (
        "metadata.namespace is a DNS label",
        {**gateway_doc(), "metadata": {"name": "gw", "namespace": "a.b"}},
        "metadata.namespace",
        "is not a valid namespace name",
        {**gateway_doc(), "metadata": {"name": "gw", "namespace": "a-b"}},
    ),
]


@pytest.mark.parametrize(
    ("bad", "path", "message", "good"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_gateway_rule(bad: dict[str, Any], path: str, message: str, good: dict[str, Any]) -> None:
    assert_error(bad, path, message)
    assert_valid(good)


def gateway_class(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": V1,
        "kind": "GatewayClass",
        "metadata": {"name": "turnout"},
        "spec": {"controllerName": "turnout.dev/gateway-controller", **spec},
    }


def test_gateway_class_controller_name_pattern() -> None:
    assert_error(gateway_class(controllerName="no-path"), "spec.controllerName", "controller name")
    assert_valid(gateway_class())


def test_gateway_class_description_length() -> None:
    assert_error(gateway_class(description="x" * 65), "spec.description", "at most 64")
    assert_valid(gateway_class(description="x" * 64))


def test_gateway_class_parameters_ref_requires_group_kind_name() -> None:
    assert_error(gateway_class(parametersRef={"name": "p"}), "spec.parametersRef.kind", "required")
    assert_valid(gateway_class(parametersRef={"group": "", "kind": "ConfigMap", "name": "p"}))
