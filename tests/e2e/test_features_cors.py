"""HTTPRoute CORS filter (GEP-1767) through `turnout run`, as the conformance test checks it.

The routes mirror the conformance manifest (exact and wildcard origins, wildcard methods
and headers, with and without credentials); each case is one of its requests. Header
lists are compared ignoring whitespace and order, as the conformance suite does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CLASS_YAML, Backend, Response, Turnout, request, service_yaml

OFFSET = 12000
PORT_80 = 80 + OFFSET
HOST = "cors.example"

GATEWAY = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: turnout
  listeners:
  - {name: http, port: 80, protocol: HTTP}
"""
)


def route(name: str, rules: list[tuple[str, str]]) -> str:
    text = f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{HOST}]
  rules:
"""
    for path, cors in rules:
        text += f"""  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    filters: [{{type: CORS, cors: {cors}}}]
    backendRefs: [{{name: infra-backend-v1, port: 8080}}]
"""
    return text


ROUTES = (
    route(
        "cors-multiple-origins-methods-headers",
        [
            (
                "/cors-1",
                """{allowOrigins: ["https://www.foo.com", "https://*.bar.com"],
        allowMethods: [GET, OPTIONS], allowHeaders: [x-header-1, x-header-2],
        exposeHeaders: [x-header-3, x-header-4], allowCredentials: true, maxAge: 3600}""",
            )
        ],
    )
    + route(
        "cors-wildcard-methods",
        [("/cors-2", """{allowOrigins: ["https://www.foo.com"], allowMethods: ["*"]}""")],
    )
    + route(
        "cors-wildcard-origin",
        [
            (
                "/cors-wildcard-origin",
                """{allowOrigins: ["*"], allowMethods: [PUT], allowCredentials: false}""",
            )
        ],
    )
    + route(
        "cors-wildcard-methods-headers",
        [
            (
                "/cors-wildcard-methods-headers",
                """{allowOrigins: ["*"], allowMethods: ["*"], allowHeaders: ["*"],
        allowCredentials: true}""",
            ),
            (
                "/cors-wildcard-methods-headers-unauth",
                """{allowOrigins: ["*"], allowMethods: ["*"], allowHeaders: ["*"],
        allowCredentials: false}""",
            ),
        ],
    )
)


class Env:
    def __init__(self, turnout: Turnout) -> None:
        self.turnout = turnout
        self.address = turnout.address("gw", "infra")

    def send(self, path: str, method: str, **headers: str) -> Response:
        sent = {name.replace("_", "-"): value for name, value in headers.items()}
        return request(self.address, PORT_80, path, host=HOST, method=method, headers=sent)


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Iterator[Env]:
    directory: Path = tmp_path_factory.mktemp("cors")
    text = GATEWAY + service_yaml("infra-backend-v1", "infra", [module_backends("v1", "infra")])
    (directory / "all.yaml").write_text(text + ROUTES)
    t = module_turnout(directory, "--port-offset", str(OFFSET))
    yield Env(t)


def _norm(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(","))


def check(resp: Response, expect: dict[str, Any], absent: tuple[str, ...] = ()) -> None:
    """``expect`` maps a header to a value or a tuple of acceptable values."""
    for name, wanted in expect.items():
        options = wanted if isinstance(wanted, tuple) else (wanted,)
        got = resp.headers.get(name)
        assert got is not None, (name, resp.headers)
        assert any(_norm(got) == _norm(option) for option in options), (name, got, options)
    for name in absent:
        assert name not in resp.headers, (name, resp.headers)


def is_preflight_answer(resp: Response) -> None:
    """Answered by the gateway: 200/204 and no echo body (never forwarded)."""
    assert resp.status in (200, 204), resp.status
    assert resp.body == b""


REQ_HEADERS = "x-header-1, x-header-2"


def test_route_accepted(env: Env) -> None:
    """CORS is a supported filter now: every route is Accepted with resolved refs."""
    for name in (
        "cors-multiple-origins-methods-headers",
        "cors-wildcard-methods",
        "cors-wildcard-origin",
        "cors-wildcard-methods-headers",
    ):
        route = env.turnout.find("HTTPRoute", name, "infra")
        conds = {c["type"]: c["status"] for c in route["status"]["parents"][0]["conditions"]}
        assert conds == {"Accepted": "True", "ResolvedRefs": "True"}, (name, conds)


@pytest.mark.parametrize(
    "origin", ["https://www.foo.com", "https://www.bar.com", "https://xpto.www.bar.com"]
)
def test_preflight_exact_and_wildcard_origins(env: Env, origin: str) -> None:
    resp = env.send(
        "/cors-1",
        "OPTIONS",
        Origin=origin,
        access_control_request_method="GET",
        access_control_request_headers=REQ_HEADERS,
    )
    is_preflight_answer(resp)
    check(
        resp,
        {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": "GET, OPTIONS",
            "access-control-allow-headers": REQ_HEADERS,
            "access-control-expose-headers": "x-header-3, x-header-4",
            "access-control-max-age": "3600",
            "access-control-allow-credentials": "true",
        },
    )


def test_preflight_from_non_matching_origin(env: Env) -> None:
    resp = env.send(
        "/cors-1", "OPTIONS", Origin="https://foobar.com", access_control_request_method="GET"
    )
    is_preflight_answer(resp)
    check(resp, {}, absent=("access-control-allow-origin",))


@pytest.mark.parametrize("origin", ["https://www.foo.com", "https://www.bar.com"])
def test_simple_request_from_allowed_origin(env: Env, origin: str) -> None:
    resp = env.send(
        "/cors-1",
        "GET",
        Origin=origin,
        access_control_request_method="GET",
        access_control_request_headers=REQ_HEADERS,
    )
    assert resp.status == 200
    assert resp.json()["path"] == "/cors-1"  # reached the backend
    check(resp, {"access-control-allow-origin": origin})


def test_simple_request_from_non_matching_origin(env: Env) -> None:
    resp = env.send(
        "/cors-1", "GET", Origin="https://foobar.com", access_control_request_method="GET"
    )
    assert resp.status == 200
    check(resp, {}, absent=("access-control-allow-origin",))


def test_preflight_wildcard_methods_without_credentials(env: Env) -> None:
    resp = env.send(
        "/cors-2", "OPTIONS", Origin="https://www.foo.com", access_control_request_method="POST"
    )
    is_preflight_answer(resp)
    check(
        resp,
        {
            "access-control-allow-methods": ("POST", "*"),
            "access-control-allow-origin": "https://www.foo.com",
            "access-control-max-age": "5",  # the default
        },
        absent=("access-control-allow-credentials",),
    )


@pytest.mark.parametrize("origin", ["https://foobar.com", "https://foobar.com:12345"])
def test_wildcard_origin(env: Env, origin: str) -> None:
    resp = env.send(
        "/cors-wildcard-origin", "OPTIONS", Origin=origin, access_control_request_method="PUT"
    )
    is_preflight_answer(resp)
    check(
        resp,
        {"access-control-allow-origin": (origin, "*"), "access-control-allow-methods": "PUT"},
        absent=("access-control-allow-credentials",),
    )
    resp = env.send("/cors-wildcard-origin", "PUT", Origin=origin)
    assert resp.status == 200
    assert resp.json()["method"] == "PUT"
    check(
        resp,
        {"access-control-allow-origin": (origin, "*")},
        absent=("access-control-allow-credentials",),
    )


def test_wildcard_methods_and_headers_with_credentials(env: Env) -> None:
    origin = "https://other.foo.com"
    resp = env.send(
        "/cors-wildcard-methods-headers",
        "OPTIONS",
        Origin=origin,
        access_control_request_method="PUT",
        access_control_request_headers=REQ_HEADERS,
    )
    is_preflight_answer(resp)
    check(
        resp,
        {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": "PUT",
            "access-control-allow-headers": REQ_HEADERS,
            "access-control-allow-credentials": "true",
        },
    )
    resp = env.send("/cors-wildcard-methods-headers", "GET", Origin=origin)
    assert resp.status == 200
    check(
        resp,
        {"access-control-allow-origin": origin, "access-control-allow-credentials": "true"},
    )


def test_wildcard_methods_and_headers_without_credentials(env: Env) -> None:
    origin = "https://other.foo.com"
    resp = env.send(
        "/cors-wildcard-methods-headers-unauth",
        "OPTIONS",
        Origin=origin,
        access_control_request_method="PUT",
        access_control_request_headers=REQ_HEADERS,
    )
    is_preflight_answer(resp)
    check(
        resp,
        {
            "access-control-allow-origin": (origin, "*"),
            "access-control-allow-methods": ("PUT", "*"),
            "access-control-allow-headers": (REQ_HEADERS, "*"),
        },
        absent=("access-control-allow-credentials",),
    )
    resp = env.send("/cors-wildcard-methods-headers-unauth", "GET", Origin=origin)
    assert resp.status == 200
    check(
        resp,
        {"access-control-allow-origin": (origin, "*")},
        absent=("access-control-allow-credentials",),
    )
