"""supportedFeatures may only name features whose proving tests exist."""

from __future__ import annotations

import ast
from pathlib import Path

from turnout.features import FEATURE_TESTS, supported_features

ROOT = Path(__file__).resolve().parents[1]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_feature_names_existing_tests() -> None:
    for feature, tests in FEATURE_TESTS.items():
        assert tests, f"{feature} lists no test"
        for node_id in tests:
            file, _, name = node_id.partition("::")
            path = ROOT / file
            assert path.is_file(), f"{feature}: {file} does not exist"
            if name:
                assert name in _test_names(path), f"{feature}: {node_id} does not exist"


def test_supported_features_sorted_and_valid_names() -> None:
    names = supported_features()
    assert names == sorted(names)
    # GEP-2162: PascalCase, letters and digits only, at most 128 characters.
    assert all(n[0].isupper() and n.isalnum() and len(n) <= 128 for n in names)


# Feature names of the Gateway profiles (pkg/features/{gateway,httproute,grpcroute,referencegrant}.go
# at gateway-api main, see the project's spec notes): a typo would publish a name the
# conformance suite never matches.
KNOWN_FEATURES = {
    "Gateway",
    "GatewayPort8080",
    "GatewayStaticAddresses",
    "GatewayHTTPListenerIsolation",
    "GatewayHTTPSListenerDetectMisdirectedRequests",
    "GatewayInfrastructurePropagation",
    "GatewayAddressEmpty",
    "GatewayBackendClientCertificate",
    "GatewayFrontendClientCertificateValidation",
    "GatewayFrontendClientCertificateValidationInsecureFallback",
    "ListenerSet",
    "HTTPRoute",
    "HTTPRouteDestinationPortMatching",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteMethodMatching",
    "HTTPRouteResponseHeaderModification",
    "HTTPRoutePortRedirect",
    "HTTPRouteSchemeRedirect",
    "HTTPRoutePathRedirect",
    "HTTPRouteHostRewrite",
    "HTTPRoutePathRewrite",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteBackendTimeout",
    "HTTPRouteParentRefPort",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteCORS",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteRetry",
    "HTTPRouteRetryBackendTimeout",
    "HTTPRouteRetryConnectionError",
    "HTTPRouteBackendURLRewrite",
    "HTTPRouteBackendRequestRedirect",
    "BackendTLSPolicy",
    "BackendTLSPolicySANValidation",
    "GRPCRoute",
    "GRPCRouteNamedRouteRule",
    "GRPCRouteRequestHeaderModifier",
    "TLSRoute",
    "TLSRouteModeTerminate",
    "TLSRouteModeMixed",
    "TCPRoute",
    "UDPRoute",
    "ReferenceGrant",
}


def test_feature_names_are_gateway_api_names() -> None:
    unknown = set(FEATURE_TESTS) - KNOWN_FEATURES
    assert not unknown, f"not Gateway API feature names: {sorted(unknown)}"


def test_every_feature_is_proven_with_traffic() -> None:
    # Status-only proof (golden files, unit tests) is not enough: each feature names at
    # least one end-to-end test of `turnout run` with real backends.
    for feature, tests in FEATURE_TESTS.items():
        assert any(t.startswith("tests/e2e/") and "::" in t for t in tests), feature


def test_no_feature_is_listed_twice() -> None:
    # A repeated key in the dict literal silently drops the first entry's tests.
    source = (ROOT / "src/turnout/features.py").read_text()
    table = next(
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "FEATURE_TESTS"
    )
    assert isinstance(table, ast.Dict)
    keys = [str(k.value) for k in table.keys if isinstance(k, ast.Constant)]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
