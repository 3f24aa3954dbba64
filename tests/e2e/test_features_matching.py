"""HTTPRoute matching and failure answers through `turnout run`, as conformance checks them.

One `turnout run` serves every route of this module, each route on its own hostname;
the echo backends (pods infra-backend-v1..v3 in namespace infra) report what they
received. Each test mirrors a Gateway API conformance test (named in its docstring):
same route shapes, same requests, same expected backend or status.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import CLASS_YAML, Backend, Response, Turnout, request, service_yaml

PORT = 8080

GATEWAY = (
    CLASS_YAML
    + f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: turnout
  listeners:
  - {{name: http, port: {PORT}, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}
"""
)


def route(name: str, host: str, rules: str, namespace: str = "infra") -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  parentRefs: [{{name: gw, namespace: infra}}]
  hostnames: [{host}]
  rules:
{rules}
"""


def to(*names: str) -> str:
    return "[" + ", ".join(f"{{name: {n}, port: 8080}}" for n in names) + "]"


V1, V2, V3 = to("infra-backend-v1"), to("infra-backend-v2"), to("infra-backend-v3")

QUERY_PARAMS = f"""  - matches: [{{queryParams: [{{name: animal, value: whale}}]}}]
    backendRefs: {V1}
  - matches: [{{queryParams: [{{name: animal, value: dolphin}}]}}]
    backendRefs: {V2}
  - matches:
    - queryParams: [{{name: animal, value: dolphin}}, {{name: color, value: blue}}]
    - queryParams: [{{name: ANIMAL, value: Whale}}]
    backendRefs: {V3}
  - matches:
    - {{path: {{type: PathPrefix, value: /path1}}, queryParams: [{{name: animal, value: whale}}]}}
    backendRefs: {V1}
  - matches:
    - {{headers: [{{name: version, value: one}}], queryParams: [{{name: animal, value: whale}}]}}
    backendRefs: {V2}
  - matches:
    - path: {{type: PathPrefix, value: /path2}}
      headers: [{{name: version, value: two}}]
      queryParams: [{{name: animal, value: whale}}]
    backendRefs: {V3}
  - matches:
    - {{path: {{type: PathPrefix, value: /path3}}, queryParams: [{{name: animal, value: shark}}]}}
    - path: {{type: PathPrefix, value: /path4}}
      headers: [{{name: version, value: three}}]
      queryParams: [{{name: animal, value: kraken}}]
    backendRefs: {V1}
  - matches: [{{path: {{type: PathPrefix, value: /path5}}}}]
    backendRefs: {V1}
  - matches: [{{queryParams: [{{name: animal, value: hydra}}]}}]
    backendRefs: {V2}
  - matches: [{{headers: [{{name: version, value: four}}]}}]
    backendRefs: {V3}"""

METHODS = f"""  - matches: [{{method: POST}}]
    backendRefs: {V1}
  - matches: [{{method: GET}}]
    backendRefs: {V2}
  - matches: [{{path: {{type: PathPrefix, value: /path1}}, method: GET}}]
    backendRefs: {V1}
  - matches: [{{headers: [{{name: version, value: one}}], method: PUT}}]
    backendRefs: {V2}
  - matches:
    - {{path: {{type: PathPrefix, value: /path2}}, headers: [{{name: version, value: two}}], method: POST}}
    backendRefs: {V3}
  - matches:
    - {{path: {{type: PathPrefix, value: /path3}}, method: PATCH}}
    - {{path: {{type: PathPrefix, value: /path4}}, headers: [{{name: version, value: three}}], method: DELETE}}
    backendRefs: {V1}
  - matches: [{{path: {{type: PathPrefix, value: /path5}}}}]
    backendRefs: {V1}
  - matches: [{{method: PATCH}}]
    backendRefs: {V2}
  - matches: [{{headers: [{{name: version, value: four}}]}}]
    backendRefs: {V3}"""

HEADERS = f"""  - matches: [{{headers: [{{name: Version, value: one}}]}}]
    backendRefs: {V1}
  - matches: [{{headers: [{{name: version, value: two}}]}}]
    backendRefs: {V2}
  - matches: [{{headers: [{{name: VERSION, value: two}}, {{name: Color, value: orange}}]}}]
    backendRefs: {V1}
  - matches: [{{headers: [{{type: Exact, name: color, value: blue}}]}}, {{headers: [{{name: color, value: green}}]}}]
    backendRefs: {V1}
  - matches: [{{headers: [{{name: color, value: red}}]}}, {{headers: [{{name: color, value: yellow}}]}}]
    backendRefs: {V2}"""

# Rules listed against precedence order, split over two routes: the answer must come
# from precedence (Exact, then the longest PathPrefix), not from list order.
PATH_ORDER_A = f"""  - matches: [{{path: {{type: PathPrefix, value: /match/}}}}]
    backendRefs: {V3}
  - matches: [{{path: {{type: Exact, value: /match}}}}]
    backendRefs: {V1}
  - matches: [{{path: {{type: PathPrefix, value: /match/prefix/}}}}]
    backendRefs: {V1}"""
PATH_ORDER_B = f"""  - matches: [{{path: {{type: PathPrefix, value: /match/prefix/one}}}}]
    backendRefs: {V2}
  - matches: [{{path: {{type: Exact, value: /match/exact}}}}]
    backendRefs: {V2}
  - matches: [{{path: {{type: Exact, value: /match/exact/one}}}}]
    backendRefs: {V3}"""

FAILURES = (
    route("no-backends", "no-backends.example", "  - matches: [{path: {value: /}}]")
    + route(
        "unknown-kind",
        "unknown-kind.example",
        "  - backendRefs: [{group: unknown.example.com, kind: Unknown, name: v1, port: 8080}]",
    )
    + route(
        "half-invalid",
        "half-invalid.example",
        "  - backendRefs: [{name: infra-backend-v1, port: 8080}, {name: missing, port: 8080}]",
    )
    + route("unready", "unready.example", "  - backendRefs: [{name: unready, port: 8080}]")
    + route(
        "granted",
        "granted.example",
        "  - backendRefs: [{name: infra-backend-v1, namespace: infra, port: 8080}]",
        namespace="team",
    )
    + route(
        "not-granted",
        "not-granted.example",
        "  - backendRefs: [{name: infra-backend-v1, namespace: infra, port: 8080}]",
        namespace="other",
    )
    + """---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-team, namespace: infra}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team}]
  to: [{group: "", kind: Service, name: infra-backend-v1}]
"""
)


@dataclass
class Env:
    turnout: Turnout
    address: str

    def get(self, host: str, path: str = "/", **kw: object) -> Response:
        return request(self.address, PORT, path, host=host, **kw)  # type: ignore[arg-type]

    def who(self, host: str, path: str = "/", **kw: object) -> str:
        """The pod that answered, or the status code when the gateway answered itself."""
        resp = self.get(host, path, **kw)
        if resp.status != 200:
            return str(resp.status)
        seen = resp.json()
        assert seen["namespace"] == "infra"
        return str(seen["pod"]).removeprefix("infra-backend-")


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Env:
    directory: Path = tmp_path_factory.mktemp("matching")
    text = GATEWAY
    for version in ("v1", "v2", "v3"):
        name = f"infra-backend-{version}"
        text += service_yaml(name, "infra", [module_backends(name, "infra")])
    text += service_yaml("unready", "infra", [module_backends("unready", "infra")], ready=False)
    text += route("query-param-matching", "query.example", QUERY_PARAMS)
    text += route("method-matching", "method.example", METHODS)
    text += route("header-matching", "headers.example", HEADERS)
    text += route("path-order-a", "order.example", PATH_ORDER_A)
    text += route("path-order-b", "order.example", PATH_ORDER_B)
    text += FAILURES
    (directory / "all.yaml").write_text(text)
    t = module_turnout(directory)
    return Env(t, t.address("gw", "infra"))


def test_query_param_matching(env: Env) -> None:
    """HTTPRouteQueryParamMatching: exact values, case-sensitive names, AND/OR, precedence."""
    cases = {
        "/?animal=whale": "v1",
        "/?animal=dolphin": "v2",
        "/?animal=dolphin&color=blue": "v3",
        "/?ANIMAL=Whale": "v3",
        "/?animal=whale&otherparam=irrelevant": "v1",
        "/?animal=dolphin&color=yellow": "v2",
        "/?color=blue": "404",
        "/?animal=dog": "404",
        "/?animal=whaledolphin": "404",
        "/": "404",
        "/path1?animal=whale": "v1",
        "/path3?animal=shark": "v1",
        "/?animal=shark": "404",
        "/path4?animal=kraken": "404",
        "/path5?animal=hydra": "v1",
    }
    for path, expected in cases.items():
        assert env.who("query.example", path) == expected, path
    with_headers = {
        ("one", "/?animal=whale"): "v2",
        ("two", "/path2?animal=whale"): "v3",
        ("three", "/path4?animal=kraken"): "v1",
        ("four", "/?animal=hydra"): "v3",
    }
    for (version, path), expected in with_headers.items():
        assert env.who("query.example", path, headers={"version": version}) == expected, path
    # The backend receives the query string as sent.
    assert env.get("query.example", "/?animal=whale&x=1").json()["path"] == "/?animal=whale&x=1"


def test_method_matching(env: Env) -> None:
    """HTTPRouteMethodMatching: method alone, with path/headers, AND/OR, precedence."""
    cases = [
        ("POST", "/", None, "v1"),
        ("GET", "/", None, "v2"),
        ("HEAD", "/", None, "404"),
        ("GET", "/path1", None, "v1"),
        ("PUT", "/", "one", "v2"),
        ("POST", "/path2", "two", "v3"),
        ("PATCH", "/path3", None, "v1"),
        ("DELETE", "/path4", "three", "v1"),
        ("PUT", "/", None, "404"),
        ("DELETE", "/path4", None, "404"),
        ("PATCH", "/path5", None, "v1"),
        ("PATCH", "/", "four", "v2"),
    ]
    for method, path, version, expected in cases:
        headers = {"version": version} if version else {}
        got = env.who("method.example", path, method=method, headers=headers)
        assert got == expected, (method, path, version)
    assert env.get("method.example", "/", method="POST").json()["method"] == "POST"


def test_exact_header_matching(env: Env) -> None:
    """HTTPRouteHeaderMatching: names case-insensitive, values exact, most headers win."""
    cases = [
        ({"Version": "one"}, "v1"),
        ({"version": "one"}, "v1"),
        ({"VERSION": "two"}, "v2"),
        ({"Version": "two", "Color": "orange"}, "v1"),
        ({"version": "two", "color": "blue"}, "v2"),
        ({"Color": "orange"}, "404"),
        ({"Some-Other-Header": "one"}, "404"),
        ({"Color": "blue"}, "v1"),
        ({"color": "green"}, "v1"),
        ({"Color": "red"}, "v2"),
        ({"Color": "yellow"}, "v2"),
        ({"Color": "purple"}, "404"),
        ({"Version": "ONE"}, "404"),  # values are case-sensitive
    ]
    for headers, expected in cases:
        assert env.who("headers.example", "/", headers=headers) == expected, headers


def test_path_match_order(env: Env) -> None:
    """HTTPRoutePathMatchOrder: Exact first, then the longest PathPrefix, across routes."""
    cases = {
        "/match/exact/one": "v3",
        "/match/exact": "v2",
        "/match": "v1",
        "/match/prefix/one/any": "v2",
        "/match/prefix/any": "v1",
        "/match/any": "v3",
        "/match/prefix/onex": "v1",  # element-wise: /match/prefix/one does not match
        "/other": "404",
    }
    for path, expected in cases.items():
        assert env.who("order.example", path) == expected, path


def test_no_backend_refs_answers_500(env: Env) -> None:
    """HTTPRouteNoBackendRefs: a rule without backendRefs (and no filter) gets 500."""
    assert env.get("no-backends.example", "/").status == 500
    route = env.turnout.find("HTTPRoute", "no-backends", "infra")
    accepted = {c["type"]: c for c in route["status"]["parents"][0]["conditions"]}["Accepted"]
    assert accepted["status"] == "True"


def test_invalid_backend_kind_answers_500(env: Env) -> None:
    """HTTPRouteInvalidBackendRefUnknownKind: ResolvedRefs=False/InvalidKind, traffic 500."""
    route = env.turnout.find("HTTPRoute", "unknown-kind", "infra")
    conds = {c["type"]: c for c in route["status"]["parents"][0]["conditions"]}
    assert (conds["ResolvedRefs"]["status"], conds["ResolvedRefs"]["reason"]) == (
        "False",
        "InvalidKind",
    )
    assert conds["Accepted"]["status"] == "True"
    assert env.get("unknown-kind.example", "/").status == 500


def test_partially_invalid_backends_answer_500_in_proportion(env: Env) -> None:
    """HTTPRouteRule.BackendRefs: the share of traffic of invalid backendRefs gets 500."""
    answers = collections.Counter(env.who("half-invalid.example") for _ in range(300))
    assert set(answers) == {"v1", "500"}, answers
    assert 0.38 < answers["500"] / 300 < 0.62, answers


def test_service_without_ready_endpoints_answers_503(env: Env) -> None:
    """A Service whose endpoints are all not ready: 503, the route stays resolved."""
    assert env.get("unready.example", "/").status == 503
    route = env.turnout.find("HTTPRoute", "unready", "infra")
    conds = {c["type"]: c for c in route["status"]["parents"][0]["conditions"]}
    assert conds["ResolvedRefs"]["status"] == "True"


def test_cross_namespace_backend_needs_reference_grant(env: Env) -> None:
    """HTTPRouteCrossNamespace / HTTPRouteInvalidCrossNamespaceBackendRef."""
    seen = env.get("granted.example", "/").json()
    assert (seen["namespace"], seen["pod"]) == ("infra", "infra-backend-v1")
    assert env.get("not-granted.example", "/").status == 500
    route = env.turnout.find("HTTPRoute", "not-granted", "other")
    conds = {c["type"]: c for c in route["status"]["parents"][0]["conditions"]}
    assert (conds["ResolvedRefs"]["status"], conds["ResolvedRefs"]["reason"]) == (
        "False",
        "RefNotPermitted",
    )
