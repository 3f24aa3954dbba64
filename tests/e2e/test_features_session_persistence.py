"""Session persistence (GEP-1619) through `turnout run --workers 2`.

Each rule splits 50/50 between two Services, the first with two endpoints, so a new
client may land on any of three echo pods. Every request opens a new connection, so
requests are spread over both worker processes: a session issued by one worker must be
honoured by the other (the signing key comes from the IR).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import (
    INFRA_GATEWAY_YAML,
    Backend,
    Response,
    Turnout,
    request,
    service_yaml,
    wait_for,
)

PORT = 8080
HOST = "sticky.example"


def _rule(path: str, persistence: str) -> str:
    return f"""  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    sessionPersistence: {persistence}
    backendRefs:
    - {{name: v1, port: 8080, weight: 50}}
    - {{name: v2, port: 8080, weight: 50}}
"""


ROUTE = (
    f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: sticky, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{HOST}]
  rules:
"""
    + _rule("/cookie", "{cookie: {name: sticky}}")
    + _rule("/header", "{type: Header, header: {name: X-Session}}")
    + _rule("/short", "{absoluteTimeout: 2s, cookie: {name: short}}")
    + _rule(
        "/permanent",
        "{absoluteTimeout: 1h, cookie: {name: perm, path: /permanent, lifetimeType: Permanent}}",
    )
    + """  - matches: [{path: {type: PathPrefix, value: /plain}}]
    backendRefs:
    - {name: v1, port: 8080, weight: 50}
    - {name: v2, port: 8080, weight: 50}
"""
)

Env = tuple[Turnout, str, Path, list[Backend]]


def _start(
    directory: Path,
    backends: Callable[..., Backend],
    turnout: Callable[..., Turnout],
) -> Env:
    pods = [backends("v1-a", "infra"), backends("v1-b", "infra"), backends("v2-a", "infra")]
    (directory / "gw.yaml").write_text(INFRA_GATEWAY_YAML + ROUTE)
    (directory / "services.yaml").write_text(
        service_yaml("v1", "infra", pods[:2]) + service_yaml("v2", "infra", pods[2:])
    )
    t = turnout(directory, "--workers", "2")
    route = t.find("HTTPRoute", "sticky", "infra")
    conditions = {c["type"]: c["status"] for c in route["status"]["parents"][0]["conditions"]}
    assert conditions == {"Accepted": "True", "ResolvedRefs": "True"}, route
    assert t.get("/config").json()["session_key"] == "<redacted>"  # the signing key
    return t, t.address("gw", "infra"), directory, pods


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Env:
    return _start(tmp_path_factory.mktemp("sticky"), module_backends, module_turnout)


def _get(env: Env, path: str, headers: dict[str, str] | None = None) -> Response:
    resp = request(env[1], PORT, path, host=HOST, headers=headers)
    assert resp.status == 200, resp
    return resp


def _cookie(resp: Response, name: str) -> tuple[str, str]:
    """(value, attributes) of the Set-Cookie for ``name``."""
    header = resp.headers.get("set-cookie", "")
    assert header.startswith(f"{name}="), resp.headers
    pair, _, attributes = header.partition(";")
    return pair.split("=", 1)[1], attributes


def test_without_a_session_requests_are_balanced(env: Env) -> None:
    """The baseline the other tests rely on: no session, every pod gets traffic."""
    pods = collections.Counter(_get(env, "/plain").json()["pod"] for _ in range(60))
    assert set(pods) == {"v1-a", "v1-b", "v2-a"}, pods


def test_cookie_session_sticks(env: Env) -> None:
    first = _get(env, "/cookie")
    value, attributes = _cookie(first, "sticky")
    assert "Path=/" in attributes and "HttpOnly" in attributes
    assert "Max-Age" not in attributes  # lifetimeType Session (the default)
    pod = first.json()["pod"]
    for i in range(50):
        cookie = f"other=1; sticky={value}; more={i}"  # among the client's other cookies
        resp = _get(env, f"/cookie/{i}", {"Cookie": cookie})
        assert resp.json()["pod"] == pod, (i, resp.json()["pod"], pod)
        assert "set-cookie" not in resp.headers  # a valid session is not re-issued
    # Each client gets its own session: new clients still spread over the pods.
    pods = {_get(env, "/cookie").json()["pod"] for _ in range(40)}
    assert len(pods) > 1, pods


def test_header_session_sticks(env: Env) -> None:
    first = _get(env, "/header")
    token = first.headers["x-session"]
    pod = first.json()["pod"]
    for i in range(50):
        resp = _get(env, "/header", {"X-Session": token})
        assert resp.json()["pod"] == pod, (i, resp.json()["pod"], pod)
        assert "x-session" not in resp.headers


def test_sessions_are_per_rule_and_tamper_proof(env: Env) -> None:
    """A token from another rule, or an altered one, starts a new session."""
    token = _get(env, "/header").headers["x-session"]
    resp = _get(env, "/cookie", {"Cookie": f"sticky={token}"})
    assert "set-cookie" in resp.headers
    value, _ = _cookie(_get(env, "/cookie"), "sticky")
    altered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    assert "set-cookie" in _get(env, "/cookie", {"Cookie": f"sticky={altered}"}).headers


def test_permanent_cookie_carries_max_age(env: Env) -> None:
    value, attributes = _cookie(_get(env, "/permanent"), "perm")
    parts = [part.strip() for part in attributes.split(";")]
    assert "Max-Age=3600" in parts and "Path=/permanent" in parts, parts
    assert "set-cookie" not in _get(env, "/permanent", {"Cookie": f"perm={value}"}).headers


def test_absolute_timeout_expires_the_session(env: Env) -> None:
    value, _ = _cookie(_get(env, "/short"), "short")
    assert "set-cookie" not in _get(env, "/short", {"Cookie": f"short={value}"}).headers
    time.sleep(3.2)  # absoluteTimeout 2s (tokens carry whole seconds)
    renewed = _get(env, "/short", {"Cookie": f"short={value}"})
    new_value, _ = _cookie(renewed, "short")
    assert new_value != value


def test_removed_endpoint_is_rebalanced(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    """A session whose endpoint leaves the Service's EndpointSlices is moved to another
    endpoint, and the response starts a new session there."""
    env = _start(tmp_path, backends, turnout)
    _, _, directory, pods = env
    while True:  # a session on one of v1's two endpoints
        first = _get(env, "/cookie")
        if first.json()["pod"] in ("v1-a", "v1-b"):
            break
    value, _ = _cookie(first, "sticky")
    gone = first.json()["pod"]
    kept = [p for p in pods[:2] if p.name != gone]
    (directory / "services.yaml").write_text(
        service_yaml("v1", "infra", kept) + service_yaml("v2", "infra", pods[2:])
    )

    def moved() -> bool:
        return bool(_get(env, "/cookie", {"Cookie": f"sticky={value}"}).json()["pod"] != gone)

    wait_for(moved, timeout=20, what="the endpoint removal to be served")
    resp = _get(env, "/cookie", {"Cookie": f"sticky={value}"})
    new_value, _ = _cookie(resp, "sticky")
    pod = resp.json()["pod"]
    for _ in range(20):
        assert _get(env, "/cookie", {"Cookie": f"sticky={new_value}"}).json()["pod"] == pod


def test_cookie_session_over_http2(env: Env) -> None:
    """HTTP/2 clients (h2c prior knowledge) get and keep sessions the same way."""
    with httpx.Client(http1=False, http2=True, base_url=f"http://{env[1]}:{PORT}") as client:
        first = client.get("/cookie", headers={"host": HOST})
        assert first.http_version == "HTTP/2" and first.status_code == 200
        value = first.cookies["sticky"]
        pod = first.json()["pod"]
        client.cookies.clear()
        for _ in range(20):
            resp = client.get("/cookie", headers={"host": HOST, "cookie": f"a=1; sticky={value}"})
            assert resp.json()["pod"] == pod
            assert "set-cookie" not in resp.headers
