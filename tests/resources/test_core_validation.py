"""Validation of the core kinds (the API server's own checks, the subset turnout needs)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.resources.docs import assert_error, assert_valid


def service(*ports: dict[str, Any], name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"ports": list(ports)},
    }


def secret(type_: str = "Opaque", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "type": type_,
        "data": data,
    }


def slice_(address_type: str, *addresses: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": "apps"},
        "addressType": address_type,
        "endpoints": [{"addresses": list(addresses)}],
    }


CASES: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    (
        "service port range",
        service({"port": 0}),
        "spec.ports[0].port",
        "between 1 and 65535",
        service({"port": 1}),
    ),
    (
        "targetPort number range",
        service({"port": 80, "targetPort": 70000}),
        "spec.ports[0].targetPort",
        "between 1 and 65535",
        service({"port": 80, "targetPort": 8080}),
    ),
    (
        "targetPort name",
        service({"port": 80, "targetPort": "Not_A_Name"}),
        "spec.ports[0].targetPort",
        "is not a valid port name",
        service({"port": 80, "targetPort": "http-alt"}),
    ),
    (
        "port names required with several ports",
        service({"port": 80}, {"port": 443, "name": "https"}),
        "spec.ports[0].name",
        "required when the Service has more than one port",
        service({"port": 80, "name": "http"}, {"port": 443, "name": "https"}),
    ),
    (
        "service name is an RFC 1035 label",
        service({"port": 80}, name="1web"),
        "metadata.name",
        "is not a valid RFC 1035 label",
        service({"port": 80}, name="web1"),
    ),
    (
        "secret data base64",
        secret(**{"tls.crt": "not base64!"}),
        "data[tls.crt]",
        "is not valid base64",
        secret(k="aGk="),
    ),
    (
        "tls secret keys",
        secret("kubernetes.io/tls", **{"tls.crt": "aGk="}),
        "data[tls.key]",
        "required for Secrets of type kubernetes.io/tls",
        secret("kubernetes.io/tls", **{"tls.crt": "aGk=", "tls.key": "aGk="}),
    ),
    (
        "endpoint address family",
        slice_("IPv4", "2001:db8::1"),
        "endpoints[0].addresses[0]",
        "is not a valid IPv4 address",
        slice_("IPv6", "2001:db8::1"),
    ),
    (
        "endpoint slice addressType enum",
        slice_("IPv5", "10.0.0.1"),
        "addressType",
        "must be one of",
        slice_("FQDN", "db.example"),
    ),
    (
        "namespace name is a label",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}},
        "metadata.name",
        "is not a valid RFC 1123 label",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a-b"}},
    ),
    (
        "label values",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "a", "labels": {"k": "-bad"}},
        },
        "metadata.labels.k",
        "is not a valid label value",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "a", "labels": {"k": "good"}},
        },
    ),
    (
        "metadata.name required",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {}},
        "metadata.name",
        "required",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
    ),
]


@pytest.mark.parametrize(
    ("bad", "path", "message", "good"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_core_rule(bad: dict[str, Any], path: str, message: str, good: dict[str, Any]) -> None:
    assert_error(bad, path, message)
    assert_valid(good)
