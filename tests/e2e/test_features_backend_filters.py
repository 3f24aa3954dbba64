"""backendRef-level filters through `turnout run`: HTTPRouteBackendURLRewrite and
HTTPRouteBackendRequestRedirect, as the conformance tests of those names check them
(httproute-backend-url-rewrite, httproute-backend-request-redirect), plus split rules
whose backendRefs carry different filters: each request gets only the filters of the
backendRef it was sent to.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import INFRA_GATEWAY_YAML, Backend, Turnout, request, service_yaml

PORT = 8080
HOST = "backend-rewrite.example"
CONFIG = (
    INFRA_GATEWAY_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend-url-rewrite, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [backend-rewrite.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /full}}]
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      filters:
      - type: URLRewrite
        urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /rewritten-full}}
  - matches: [{path: {type: PathPrefix, value: /prefix}}]
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      filters:
      - type: URLRewrite
        urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /rewritten-prefix}}
  - matches: [{path: {type: PathPrefix, value: /split}}]
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      filters:
      - type: URLRewrite
        urlRewrite:
          hostname: one.example.org
          path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}
    - name: infra-backend-v2
      port: 8080
      filters:
      - type: URLRewrite
        urlRewrite:
          hostname: two.example.org
          path: {type: ReplaceFullPath, replaceFullPath: /two}
  - matches: [{path: {type: PathPrefix, value: /plain}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend-request-redirect, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [backend-redirect.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /full}}]
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      filters:
      - type: RequestRedirect
        requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /redirected-full}}
  - matches: [{path: {type: PathPrefix, value: /prefix}}]
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      filters:
      - type: RequestRedirect
        requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /redirected-prefix}}
  - matches: [{path: {type: PathPrefix, value: /split}}]
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      filters:
      - type: RequestRedirect
        requestRedirect: {hostname: moved.example, statusCode: 301}
    - {name: infra-backend-v2, port: 8080}
"""
)

Gateway = tuple[Turnout, str]


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Gateway:
    directory: Path = tmp_path_factory.mktemp("backend-filters")
    v1 = module_backends("infra-backend-v1", "infra")
    v2 = module_backends("infra-backend-v2", "infra")
    (directory / "all.yaml").write_text(
        CONFIG
        + service_yaml("infra-backend-v1", "infra", [v1])
        + service_yaml("infra-backend-v2", "infra", [v2])
    )
    t = module_turnout(directory)
    for name in ("backend-url-rewrite", "backend-request-redirect"):
        route = t.find("HTTPRoute", name, "infra")
        conditions = {c["type"]: c["status"] for c in route["status"]["parents"][0]["conditions"]}
        assert conditions["Accepted"] == "True", route
        assert conditions["ResolvedRefs"] == "True", route
    return t, t.address("gw", "infra")


def _echo(gateway: Gateway, path: str) -> dict[str, Any]:
    _, address = gateway
    resp = request(address, PORT, path, host=HOST)
    assert resp.status == 200, (path, resp)
    seen: dict[str, Any] = resp.json()
    return seen


def test_backend_url_rewrite(gateway: Gateway) -> None:
    """The conformance cases: ReplaceFullPath and ReplacePrefixMatch on a backendRef."""
    seen = _echo(gateway, "/full/original")
    assert (seen["path"], seen["pod"], seen["host"]) == (
        "/rewritten-full",
        "infra-backend-v1",
        HOST,
    )
    seen = _echo(gateway, "/prefix/original?q=1")
    assert seen["path"] == "/rewritten-prefix/original?q=1"
    assert seen["host"] == HOST
    # A rule without backend filters is untouched.
    assert _echo(gateway, "/plain/original")["path"] == "/plain/original"


def test_backend_url_rewrite_only_for_its_backend(gateway: Gateway) -> None:
    """Two backendRefs with different URLRewrite filters: each request carries the
    rewrite of the backend it went to, never the other's."""
    want = {
        "infra-backend-v1": ("one.example.org", "/one/x?q=1"),
        "infra-backend-v2": ("two.example.org", "/two?q=1"),
    }
    pods: collections.Counter[str] = collections.Counter()
    for _ in range(60):
        seen = _echo(gateway, "/split/x?q=1")
        assert (seen["host"], seen["path"]) == want[seen["pod"]], seen
        pods[seen["pod"]] += 1
    assert set(pods) == set(want), pods


REDIRECT_HOST = "backend-redirect.example"


def test_backend_request_redirect(gateway: Gateway) -> None:
    """The conformance cases: ReplaceFullPath and ReplacePrefixMatch redirects on a
    backendRef answer 302 with the rewritten Location, and nothing reaches the backend."""
    _, address = gateway
    cases = {
        "/full/original": f"http://{REDIRECT_HOST}:{PORT}/redirected-full",
        "/prefix/original?q=1": f"http://{REDIRECT_HOST}:{PORT}/redirected-prefix/original?q=1",
    }
    for path, location in cases.items():
        resp = request(address, PORT, path, host=REDIRECT_HOST)
        assert (resp.status, resp.headers.get("location")) == (302, location), (path, resp)
        assert resp.body == b"", resp


def test_backend_request_redirect_only_for_its_backend(gateway: Gateway) -> None:
    """A 50/50 split where only the first backendRef redirects: requests sent to it get
    its 301, the others are forwarded to the second backend untouched."""
    _, address = gateway
    outcomes: collections.Counter[str] = collections.Counter()
    for _ in range(60):
        resp = request(address, PORT, "/split/x?q=1", host=REDIRECT_HOST)
        if resp.status == 301:
            assert resp.headers["location"] == f"http://moved.example:{PORT}/split/x?q=1", resp
            outcomes["redirect"] += 1
        else:
            assert resp.status == 200, resp
            seen = resp.json()
            assert (seen["pod"], seen["path"]) == ("infra-backend-v2", "/split/x?q=1"), seen
            outcomes["forward"] += 1
    assert set(outcomes) == {"redirect", "forward"}, outcomes
