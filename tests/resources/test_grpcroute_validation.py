"""GRPCRoute: CRD defaults, schema and CEL rules, each with a failing and a passing case."""

from __future__ import annotations

from typing import Any

import pytest

from tests.resources.docs import V1, assert_error, assert_valid, backend
from turnout.resources import GRPCRoute, parse_object

R0 = "spec.rules[0]"
M0 = f"{R0}.matches[0]"


def grpc_route(*rules: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"parentRefs": [{"name": "gw", "namespace": "infra"}]}
    if rules:
        body["rules"] = list(rules)
    body.update(spec)
    return {
        "apiVersion": V1,
        "kind": "GRPCRoute",
        "metadata": {"name": "api", "namespace": "apps"},
        "spec": body,
    }


def method_rule(**method: Any) -> dict[str, Any]:
    return {"matches": [{"method": method}], "backendRefs": [backend()]}


def test_defaults() -> None:
    result = parse_object(grpc_route(method_rule(service="pkg.Greeter")))
    route = result.obj
    assert isinstance(route, GRPCRoute) and result.errors == []
    rule = route.spec.rules[0]
    method = rule.matches[0].method
    assert method is not None and (method.type, method.service, method.method) == (
        "Exact",
        "pkg.Greeter",
        None,
    )
    assert rule.backend_refs[0].weight == 1
    # Unlike HTTPRoute, the CRD defaults neither rules nor matches.
    empty = parse_object(grpc_route()).obj
    assert isinstance(empty, GRPCRoute) and empty.spec.rules == []
    bare = parse_object(grpc_route({"backendRefs": [backend()]})).obj
    assert isinstance(bare, GRPCRoute) and bare.spec.rules[0].matches == []


def test_v1alpha2_is_read_as_v1() -> None:
    doc = {**grpc_route(method_rule(service="pkg.Greeter")), "apiVersion": f"{V1}alpha2"}
    assert isinstance(parse_object(doc).obj, GRPCRoute)


def test_method_match_needs_service_or_method() -> None:
    assert_error(grpc_route(method_rule()), f"{M0}.method", "one or both of service or method")
    assert_error(
        grpc_route(method_rule(type="RegularExpression")),
        f"{M0}.method",
        "one or both of service or method",
    )
    assert_valid(grpc_route(method_rule(method="SayHello")))


@pytest.mark.parametrize(
    "service", ["pkg.v1.Greeter", ".pkg.Greeter", "_x.Y_1", "PKG.greeter", "Greeter"]
)
def test_exact_service_names_accepted(service: str) -> None:
    assert_valid(grpc_route(method_rule(service=service)))


@pytest.mark.parametrize("service", ["pkg/Greeter", "pkg..Greeter", "1pkg.Greeter", "pkg.", ""])
def test_exact_service_names_rejected(service: str) -> None:
    assert_error(grpc_route(method_rule(service=service)), f"{M0}.method.service", "gRPC service")


@pytest.mark.parametrize("method", ["Say-Hello", "9Lives", "a.b", ""])
def test_exact_method_names_rejected(method: str) -> None:
    doc = grpc_route(method_rule(service="pkg.Greeter", method=method))
    assert_error(doc, f"{M0}.method.method", "gRPC method")


def test_regex_values_skip_the_name_syntax() -> None:
    # RE2 validity is the graph's business (reported in status, not a load error).
    assert_valid(grpc_route(method_rule(type="RegularExpression", service="pkg\\..*", method="(")))


def test_lengths() -> None:
    assert_error(grpc_route(method_rule(service="a" * 1025)), f"{M0}.method.service", "1024")
    headers = [{"name": f"h{i}", "value": "v"} for i in range(17)]
    doc = grpc_route({"matches": [{"headers": headers}]})
    assert_error(doc, f"{M0}.headers", "at most 16")


def test_header_names_unique_and_types() -> None:
    twice = [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]
    assert_error(
        grpc_route({"matches": [{"headers": twice}]}), f"{M0}.headers[1].name", "duplicate"
    )
    prefix = [{"name": "a", "type": "Prefix", "value": "1"}]
    assert_error(grpc_route({"matches": [{"headers": prefix}]}), f"{M0}.headers[0].type", "Prefix")


def test_filters() -> None:
    modifier = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": []}}
    twice = grpc_route({"filters": [modifier, modifier], "backendRefs": [backend()]})
    assert_error(twice, f"{R0}.filters[1]", "cannot be repeated")
    mismatch = {"type": "ResponseHeaderModifier", "requestHeaderModifier": {"set": []}}
    doc = grpc_route({"filters": [mismatch], "backendRefs": [backend()]})
    assert_error(doc, f"{R0}.filters[0].requestHeaderModifier", "must not be set")
    assert_error(doc, f"{R0}.filters[0].responseHeaderModifier", "required")
    redirect = {"type": "RequestRedirect", "requestRedirect": {}}
    doc = grpc_route({"filters": [redirect], "backendRefs": [backend()]})
    assert_error(doc, f"{R0}.filters[0].type", "RequestRedirect")
    both = {"backendRef": backend("m"), "percent": 5, "fraction": {"numerator": 1}}
    mirror = {"type": "RequestMirror", "requestMirror": both}
    doc = grpc_route({"filters": [mirror], "backendRefs": [backend()]})
    assert_error(doc, f"{R0}.filters[0].requestMirror", "only one of percent or fraction")
    in_backend = {**backend(), "filters": [modifier, modifier]}
    doc = grpc_route({"backendRefs": [in_backend]})
    assert_error(doc, f"{R0}.backendRefs[0].filters[1]", "cannot be repeated")


def test_backend_port_rule_names_and_match_total() -> None:
    assert_error(
        grpc_route({"backendRefs": [backend(port=None)]}),
        f"{R0}.backendRefs[0].port",
        "required when kind is Service",
    )
    named = {"name": "same", "backendRefs": [backend()]}
    assert_error(grpc_route(named, named), "spec.rules[1].name", "duplicate rule name")
    many = {"matches": [{"method": {"service": "a"}}] * 64}
    assert_error(grpc_route(many, many, many), "spec.rules", "at most 128 matches")
