"""GatewayClass.status.supportedFeatures (GEP-2162): one table, each entry proven by tests.

A feature is listed only when the data plane honours it; each entry names the tests
(pytest node ids, relative to the repo root) that prove it with real traffic and
status. `tests/test_features.py` checks every named test exists, so the table cannot
claim a feature whose proof was deleted.
"""

from __future__ import annotations

FEATURE_TESTS: dict[str, tuple[str, ...]] = {
    "Gateway": (
        "tests/e2e/test_run.py::test_gateway_status_and_address",
        "tests/golden/test_golden.py",
    ),
    "HTTPRoute": (
        "tests/e2e/test_run.py::test_routes_by_host_and_path",
        "tests/golden/test_golden.py",
    ),
    "ReferenceGrant": (
        "tests/e2e/test_run.py::test_reference_grant_revocation",
        "tests/golden/test_golden.py",
    ),
}


def supported_features() -> list[str]:
    return sorted(FEATURE_TESTS)
