"""Model shape: CRD defaults, aliases, keys, unknown fields, ignored kinds, to_dict."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from tests.resources.docs import V1, backend, gateway_doc, route_doc
from turnout.resources import (
    ConfigMap,
    EndpointSlice,
    Gateway,
    GatewayClass,
    HTTPRoute,
    HTTPRouteMatch,
    LabelSelector,
    Namespace,
    ReferenceGrant,
    Secret,
    Service,
    parse_object,
    to_dict,
)


def parsed(doc: dict[str, Any]) -> Any:
    result = parse_object(doc)
    assert result.errors == [], result.errors
    assert result.obj is not None
    return result.obj


def test_httproute_defaults() -> None:
    route = parsed(route_doc())
    assert isinstance(route, HTTPRoute)
    ref = route.spec.parent_refs[0]
    assert (ref.group, ref.kind, ref.section_name, ref.port) == (
        "gateway.networking.k8s.io",
        "Gateway",
        None,
        None,
    )
    assert len(route.spec.rules) == 1
    rule = route.spec.rules[0]
    assert rule.matches == [HTTPRouteMatch()]
    assert (rule.matches[0].path.type, rule.matches[0].path.value) == ("PathPrefix", "/")
    assert rule.backend_refs == [] and rule.filters == [] and rule.timeouts is None


def test_empty_matches_stay_empty() -> None:
    route = parsed(route_doc({"matches": [], "backendRefs": [backend()]}))
    assert route.spec.rules[0].matches == []


def test_backend_and_filter_defaults() -> None:
    doc = route_doc(
        {
            "backendRefs": [backend()],
            "filters": [
                {
                    "type": "RequestMirror",
                    "requestMirror": {"backendRef": backend("m"), "fraction": {"numerator": 5}},
                },
                {"type": "CORS", "cors": {}},
                {"type": "RequestHeaderModifier", "requestHeaderModifier": {}},
            ],
        },
        {"filters": [{"type": "RequestRedirect", "requestRedirect": {}}]},
    )
    route = parsed(doc)
    ref = route.spec.rules[0].backend_refs[0]
    assert (ref.group, ref.kind, ref.namespace, ref.weight, ref.filters) == (
        "",
        "Service",
        None,
        1,
        [],
    )
    mirror, cors, modifier = route.spec.rules[0].filters
    assert mirror.request_mirror.fraction.denominator == 100
    assert cors.cors.max_age == 5 and cors.cors.allow_credentials is None
    assert modifier.request_header_modifier.set == []
    redirect = route.spec.rules[1].filters[0].request_redirect
    assert redirect.status_code == 302 and redirect.scheme is None and redirect.port is None


def test_gateway_defaults() -> None:
    doc = gateway_doc(
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {
            "name": "https",
            "port": 443,
            "protocol": "HTTPS",
            "tls": {"certificateRefs": [{"name": "c"}]},
        },
        addresses=[{"value": "192.0.2.1"}],
    )
    gw = parsed(doc)
    assert isinstance(gw, Gateway)
    http, https = gw.spec.listeners
    assert http.hostname is None and http.tls is None
    assert http.allowed_routes.namespaces.from_ == "Same"
    assert http.allowed_routes.namespaces.selector is None and http.allowed_routes.kinds == []
    assert https.tls.mode == "Terminate" and https.tls.options == {}
    cert = https.tls.certificate_refs[0]
    assert (cert.group, cert.kind, cert.namespace) == ("", "Secret", None)
    assert gw.spec.addresses[0].type == "IPAddress"
    assert gw.spec.infrastructure is None and gw.spec.allowed_listeners is None


def test_route_group_kind_default_group() -> None:
    doc = gateway_doc(
        {
            "name": "http",
            "port": 80,
            "protocol": "HTTP",
            "allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}], "namespaces": {"from": "All"}},
        }
    )
    kinds = parsed(doc).spec.listeners[0].allowed_routes
    assert kinds.kinds[0].group == "gateway.networking.k8s.io"
    assert kinds.namespaces.from_ == "All"


def test_populate_by_name_and_alias() -> None:
    match = HTTPRouteMatch.model_validate({"queryParams": [{"name": "q", "value": "1"}]})
    assert match.query_params[0].type == "Exact"
    same = HTTPRouteMatch(query_params=match.query_params)
    assert same == match


def test_models_are_frozen() -> None:
    route = parsed(route_doc())
    with pytest.raises(pydantic.ValidationError):
        route.spec.hostnames = ["x"]


def test_keys_and_namespaces() -> None:
    route = parsed({**route_doc(), "metadata": {"name": "r"}})
    assert route.namespace == "default" and route.key == ("default", "r")
    gc = parsed(
        {
            "apiVersion": V1,
            "kind": "GatewayClass",
            "metadata": {"name": "c", "namespace": "x"},
            "spec": {"controllerName": "a.b/c"},
        }
    )
    assert isinstance(gc, GatewayClass)
    assert gc.namespace == "" and gc.key == ("", "c")
    ns = parsed(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a", "labels": {"a": "b"}},
        }
    )
    assert isinstance(ns, Namespace) and ns.key == ("", "team-a")


def test_unknown_fields_are_warnings_and_dropped() -> None:
    doc = route_doc({"backendRefs": [{**backend(), "futureField": 1}], "futureRuleField": {"x": 1}})
    doc["spec"]["futureSpec"] = True
    result = parse_object(doc)
    assert result.errors == []
    assert [(w.path, w.message) for w in result.warnings] == [
        ("spec.futureSpec", "unknown field, ignored"),
        ("spec.rules[0].futureRuleField", "unknown field, ignored"),
        ("spec.rules[0].backendRefs[0].futureField", "unknown field, ignored"),
    ]
    assert result.obj is not None
    dumped = to_dict(result.obj)
    assert "futureSpec" not in dumped["spec"]
    assert "futureField" not in dumped["spec"]["rules"][0]["backendRefs"][0]


def test_status_is_ignored_and_nulls_pruned() -> None:
    doc = route_doc(hostnames=None)
    doc["status"] = {"parents": [{"bogus": True}]}
    doc["spec"]["rules"] = [{"matches": None, "backendRefs": [backend()]}]
    result = parse_object(doc)
    assert result.errors == [] and result.warnings == []
    assert result.obj is not None
    assert result.obj.spec.hostnames == []
    assert result.obj.spec.rules[0].matches == [HTTPRouteMatch()]


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_gateway_api_versions(version: str) -> None:
    doc = {**route_doc(), "apiVersion": f"gateway.networking.k8s.io/{version}"}
    assert isinstance(parsed(doc), HTTPRoute)


def test_reference_grant_v1alpha2_and_fields() -> None:
    doc = {
        "apiVersion": "gateway.networking.k8s.io/v1alpha2",
        "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": "backends"},
        "spec": {
            "from": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "apps"}
            ],
            "to": [{"group": "", "kind": "Service"}],
        },
    }
    grant = parsed(doc)
    assert isinstance(grant, ReferenceGrant)
    assert grant.spec.from_[0].namespace == "apps" and grant.spec.to[0].name is None
    bad = {**doc, "spec": {"from": [], "to": [{"group": "", "kind": "Service"}]}}
    result = parse_object(bad)
    assert [(e.path, e.message) for e in result.errors] == [
        ("spec.from", "must have at least 1 item(s)")
    ]


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("apps/v1", "Deployment"),
        ("gateway.networking.k8s.io/v1beta1", "GRPCRoute"),  # GRPCRoute has no v1beta1
        ("gateway.networking.k8s.io/v1alpha3", "TCPRoute"),  # TCPRoute has no v1alpha3
        ("gateway.networking.k8s.io/v1alpha2", "HTTPRoute"),
        ("v2", "Service"),
    ],
)
def test_unused_kinds_are_ignored(api_version: str, kind: str) -> None:
    result = parse_object({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
    assert result.ignored and result.obj is None and result.errors == []
    assert (result.kind, result.name, result.namespace) == (kind, "x", "default")


def test_missing_api_version_and_kind_are_errors() -> None:
    result = parse_object({"metadata": {"name": "x"}})
    assert not result.ignored
    assert [e.path for e in result.errors] == ["apiVersion", "kind"]


def test_to_dict_uses_json_names() -> None:
    dumped = to_dict(parsed(gateway_doc()))
    listener = dumped["spec"]["listeners"][0]
    assert dumped["spec"]["gatewayClassName"] == "turnout"
    assert listener["allowedRoutes"]["namespaces"] == {"from": "Same"}


def test_raw_document_is_kept() -> None:
    doc = route_doc()
    result = parse_object(doc)
    assert result.raw == doc


def test_label_selector_matches() -> None:
    sel = LabelSelector.model_validate(
        {
            "matchLabels": {"team": "a"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "owner", "operator": "Exists"},
            ],
        }
    )
    assert sel.matches({"team": "a", "env": "prod", "owner": "x"})
    assert not sel.matches({"team": "b", "env": "prod", "owner": "x"})
    assert not sel.matches({"team": "a", "env": "dev", "owner": "x"})
    assert not sel.matches({"team": "a", "env": "prod", "owner": "x", "legacy": "1"})
    assert not sel.matches({"team": "a", "env": "prod", "owner": "x", "tier": "db"})
    assert not sel.matches({"team": "a", "env": "prod"})
    assert LabelSelector().matches({"anything": "x"})


# --- core kinds ---


def test_service_defaults_and_aliases() -> None:
    svc = parsed(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {
                "clusterIP": "10.0.0.1",
                "ports": [{"port": 80, "targetPort": "http", "appProtocol": "kubernetes.io/h2c"}],
                "sessionAffinity": "None",
            },
        }
    )
    assert isinstance(svc, Service)
    assert svc.spec.type == "ClusterIP" and svc.spec.cluster_ip == "10.0.0.1"
    port = svc.spec.ports[0]
    assert (port.protocol, port.target_port, port.app_protocol, port.name) == (
        "TCP",
        "http",
        "kubernetes.io/h2c",
        None,
    )


def test_endpoint_slice_service_name_and_defaults() -> None:
    eps = parsed(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "web-abc",
                "namespace": "apps",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.0.1"]}],
            "ports": [{"port": 8080}],
        }
    )
    assert isinstance(eps, EndpointSlice)
    assert eps.service_name == "web"
    assert eps.endpoints[0].conditions.ready is None
    assert eps.ports is not None and eps.ports[0].protocol == "TCP" and eps.ports[0].name is None


def test_secret_and_config_map() -> None:
    secret = parsed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"k": "aGVsbG8="},
            "stringData": {"j": "plain"},
        }
    )
    assert isinstance(secret, Secret)
    assert secret.type == "Opaque"
    assert secret.get_bytes("k") == b"hello" and secret.get_bytes("j") == b"plain"
    assert secret.get_bytes("missing") is None
    cm = parsed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"ca.crt": "x"},
        }
    )
    assert isinstance(cm, ConfigMap) and cm.data == {"ca.crt": "x"} and cm.binary_data == {}
