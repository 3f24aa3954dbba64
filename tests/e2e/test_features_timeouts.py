"""HTTPRoute timeouts through `turnout run` (GEP-1742), as the conformance tests
HTTPRouteRequestTimeout and HTTPRouteBackendRequestTimeout check them: a backend that
answers after 1 s gets a 504 under a 500 ms timeout, and "0s" disables the timeout.
"""

from __future__ import annotations

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
metadata: {name: timeouts, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /request-timeout}}]
    timeouts: {request: 500ms}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /disabled}}]
    timeouts: {request: 0s}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /backend-timeout}}]
    timeouts: {request: 10s, backendRequest: 500ms}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
"""
)


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> tuple[Turnout, str]:
    directory: Path = tmp_path_factory.mktemp("timeouts")
    backend = module_backends("infra-backend-v1", "infra")
    (directory / "all.yaml").write_text(
        CONFIG + service_yaml("infra-backend-v1", "infra", [backend])
    )
    t = module_turnout(directory)
    return t, t.address("gw", "infra")


def test_request_timeout(gateway: tuple[Turnout, str]) -> None:
    t, address = gateway
    route = t.find("HTTPRoute", "timeouts", "infra")
    accepted = {c["type"]: c["status"] for c in route["status"]["parents"][0]["conditions"]}
    assert accepted["Accepted"] == "True"
    assert request(address, PORT, "/request-timeout?delay=1s").status == 504
    assert request(address, PORT, "/request-timeout").status == 200


def test_request_timeout_disabled_by_zero(gateway: tuple[Turnout, str]) -> None:
    _, address = gateway
    assert request(address, PORT, "/disabled?delay=1s").status == 200


def test_backend_request_timeout(gateway: tuple[Turnout, str]) -> None:
    _, address = gateway
    assert request(address, PORT, "/backend-timeout?delay=1s").status == 504
    assert request(address, PORT, "/backend-timeout").status == 200
