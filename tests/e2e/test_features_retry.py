"""HTTPRoute retries through `turnout run` (GEP-1731), as the conformance tests
HTTPRouteRetry, HTTPRouteRetryConnectionError and HTTPRouteRetryBackendTimeout check
them. The echo backend's retry simulation fails the first ``succeedAfter`` requests of a
key (with ``status``, a connection reset, or late by ``delayRetry``); a direct request to
the backend with the same key then tells how many attempts the gateway made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import INFRA_GATEWAY_YAML, Backend, Turnout, request, service_yaml

PORT = 8080
CONFIG = (
    INFRA_GATEWAY_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: retries, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /retry/code-500-502-attempts-3}}]
    retry: {codes: [500, 502], attempts: 3}
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /retry/code-500-attempts-3}}]
    retry: {codes: [500], attempts: 3}
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /retry/no-status-code-attempts-3}}]
    retry: {attempts: 3}
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /retry/backend-request-timeout-200ms}}]
    retry: {attempts: 2}
    timeouts: {backendRequest: 200ms}
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /retry/request-timeout-400ms}}]
    retry: {codes: [500], attempts: 5}
    timeouts: {backendRequest: 200ms, request: 400ms}
    backendRefs: [{name: infra-backend-v3, port: 8080}]
"""
)

Gateway = tuple[Turnout, str, Backend]


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Gateway:
    directory: Path = tmp_path_factory.mktemp("retry")
    backend = module_backends("infra-backend-v3", "infra")
    (directory / "all.yaml").write_text(
        CONFIG + service_yaml("infra-backend-v3", "infra", [backend])
    )
    t = module_turnout(directory)
    route = t.find("HTTPRoute", "retries", "infra")
    conditions = {c["type"]: c["status"] for c in route["status"]["parents"][0]["conditions"]}
    assert conditions["Accepted"] == "True", route
    assert conditions["ResolvedRefs"] == "True", route
    return t, t.address("gw", "infra"), backend


def _try(gateway: Gateway, path: str, **simulation: str) -> tuple[int, int]:
    """One request through the gateway with a fresh key: (status, attempts at the backend)."""
    _, address, backend = gateway
    key = uuid.uuid4().hex
    query = "&".join(f"{k}={v}" for k, v in {**simulation, "key": key}.items())
    status = request(address, PORT, f"{path}?{query}").status
    # The backend counts every request of the key; this one is the next.
    probe = request(backend.address, backend.port, f"/?key={key}")
    return status, int(probe.headers["x-echo-attempt"]) - 1


def test_retry_on_listed_codes(gateway: Gateway) -> None:
    path = "/retry/code-500-502-attempts-3"
    assert _try(gateway, path, status="500", succeedAfter="2") == (200, 3)
    assert _try(gateway, path, status="502", succeedAfter="3") == (200, 4)
    # attempts: 3 is three retries, four requests in all: the fourth failure is returned.
    assert _try(gateway, path, status="500", succeedAfter="4") == (500, 4)
    assert _try(gateway, path, status="502", succeedAfter="5") == (502, 4)
    assert _try(gateway, path) == (200, 1)


def test_no_retry_on_unlisted_code(gateway: Gateway) -> None:
    assert _try(gateway, "/retry/code-500-attempts-3", status="503", succeedAfter="2") == (503, 1)
    assert _try(gateway, "/retry/code-500-attempts-3", status="500", succeedAfter="2") == (200, 3)
    # Without codes only connection errors and timeouts are retried.
    path = "/retry/no-status-code-attempts-3"
    assert _try(gateway, path, status="500", succeedAfter="2") == (500, 1)


def test_retry_on_connection_reset(gateway: Gateway) -> None:
    path = "/retry/no-status-code-attempts-3"
    assert _try(gateway, path, failWith="reset", succeedAfter="2") == (200, 3)
    status, attempts = _try(gateway, path, failWith="reset", succeedAfter="4")
    assert status in (500, 503), status  # conformance accepts either
    assert attempts == 4


def test_retry_on_backend_request_timeout(gateway: Gateway) -> None:
    path = "/retry/backend-request-timeout-200ms"
    # Each late attempt (300 ms > 200 ms backendRequest) is cut off and retried.
    assert _try(gateway, path, succeedAfter="2", delayRetry="300ms") == (200, 3)
    assert _try(gateway, path, succeedAfter="3", delayRetry="300ms") == (504, 3)


def test_retries_within_request_timeout(gateway: Gateway) -> None:
    path = "/retry/request-timeout-400ms"
    assert _try(gateway, path, status="500", succeedAfter="1") == (200, 2)
    # Four failures of 100 ms each do not fit in the 400 ms request timeout.
    status, attempts = _try(gateway, path, status="500", succeedAfter="4", delayRetry="100ms")
    assert status == 504
    assert attempts < 5
