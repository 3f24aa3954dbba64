"""GatewayClass.status.supportedFeatures (GEP-2162): one table, each entry proven by tests.

A feature is listed only when the data plane honours it; each entry names the tests
(pytest node ids, relative to the repo root) that prove it with real traffic and
status. `tests/test_features.py` checks every named test exists, so the table cannot
claim a feature whose proof was deleted.

Not listed until their behaviour has such a test: infrastructure propagation and
mesh. GRPCRoute's RequestMirror and
ResponseHeaderModifier work (tests/e2e/test_features_grpc.py) but have no feature name
of their own in pkg/features/grpcroute.go. Session persistence (GEP-1619) is served and
tested (tests/e2e/test_features_session_persistence.py), but the Gateway API defines no
feature name for it (pkg/features), so it is not listed either.
"""

from __future__ import annotations

_MATCHING = "tests/e2e/test_features_matching.py"
_FILTERS = "tests/e2e/test_features_filters.py"
_GATEWAY = "tests/e2e/test_features_gateway.py"
_GOLDEN = "tests/golden/test_golden.py"
_TIMEOUTS = "tests/e2e/test_features_timeouts.py"
_RETRY = "tests/e2e/test_features_retry.py"
_CORS = "tests/e2e/test_features_cors.py"
_BACKEND_FILTERS = "tests/e2e/test_features_backend_filters.py"
_BACKEND_TLS = "tests/e2e/test_features_backend_tls.py"
_GRPC = "tests/e2e/test_features_grpc.py"
_FRONTEND_MTLS = "tests/e2e/test_features_frontend_mtls.py"
_TCP = "tests/e2e/test_features_tcp.py"
_TLS_ROUTE = "tests/e2e/test_features_tls_route.py"
_UDP = "tests/e2e/test_features_udp.py"

FEATURE_TESTS: dict[str, tuple[str, ...]] = {
    "BackendTLSPolicy": (
        f"{_BACKEND_TLS}::test_reencrypts_with_policy_hostname_as_sni",
        f"{_BACKEND_TLS}::test_mismatched_hostname_or_ca_fails",
        f"{_BACKEND_TLS}::test_invalid_ca_refs_give_5xx_and_status",
        f"{_BACKEND_TLS}::test_conflict_resolved_by_age",
        f"{_BACKEND_TLS}::test_section_name_targets_one_port",
        f"{_BACKEND_TLS}::test_reencrypt_and_ca_configmap_changes",
        "tests/e2e/test_backend_tls_grpc.py::test_grpc_route_reencrypts_to_tls_backend",
        "tests/e2e/test_backend_tls_grpc.py::test_grpc_route_backend_certificate_mismatch_fails",
        _GOLDEN,
    ),
    "BackendTLSPolicySANValidation": (f"{_BACKEND_TLS}::test_subject_alt_names_hostname_and_uri",),
    "Gateway": (
        "tests/e2e/test_run.py::test_gateway_status_and_address",
        _GOLDEN,
    ),
    "GatewayBackendClientCertificate": (
        f"{_BACKEND_TLS}::test_gateway_presents_backend_client_certificate",
        _GOLDEN,
    ),
    "GatewayFrontendClientCertificateValidation": (
        f"{_FRONTEND_MTLS}::test_default_and_per_port_validation",
        f"{_FRONTEND_MTLS}::test_invalid_ca_refs_reject_only_https_listeners",
        _GOLDEN,
    ),
    "GatewayFrontendClientCertificateValidationInsecureFallback": (
        f"{_FRONTEND_MTLS}::test_insecure_fallback_accepts_any_client",
    ),
    "GatewayAddressEmpty": (f"{_GATEWAY}::test_address_without_value_is_assigned",),
    "GatewayHTTPListenerIsolation": (f"{_GATEWAY}::test_http_listener_isolation",),
    "GatewayPort8080": (
        f"{_GATEWAY}::test_gateway_port_8080",
        f"{_FILTERS}::test_redirect_port_and_scheme",
    ),
    "GatewayStaticAddresses": (
        f"{_GATEWAY}::test_static_addresses",
        "tests/test_address_allocator.py",
        _GOLDEN,
    ),
    "GatewayHTTPSListenerDetectMisdirectedRequests": (
        "tests/e2e/test_tls.py::test_https_by_sni_and_misdirected_requests",
    ),
    "GRPCRoute": (
        f"{_GRPC}::test_routes_accepted_and_counted",
        f"{_GRPC}::test_exact_method_matching",
        f"{_GRPC}::test_service_method_and_regex_matching",
        f"{_GRPC}::test_header_matching",
        f"{_GRPC}::test_listener_hostname_matching",
        f"{_GRPC}::test_weighted_backends",
        f"{_GRPC}::test_invalid_backend_is_unavailable",
        f"{_GRPC}::test_cross_namespace_backend_needs_reference_grant",
        f"{_GRPC}::test_https_listener_alpn_h2",
        f"{_GRPC}::test_streaming_calls",
        f"{_GRPC}::test_httproute_and_grpcroute_do_not_share_a_hostname",
        "tests/ir/test_grpcroute_paths.py",
        _GOLDEN,
    ),
    "GRPCRouteNamedRouteRule": (f"{_GRPC}::test_named_rules",),
    "GRPCRouteRequestHeaderModifier": (
        f"{_GRPC}::test_request_header_modifier",
        f"{_GRPC}::test_backend_level_request_header_modifier",
    ),
    "HTTPRoute": (
        "tests/e2e/test_run.py::test_routes_by_host_and_path",
        f"{_MATCHING}::test_exact_header_matching",
        f"{_MATCHING}::test_path_match_order",
        f"{_MATCHING}::test_no_backend_refs_answers_500",
        f"{_MATCHING}::test_invalid_backend_kind_answers_500",
        f"{_MATCHING}::test_partially_invalid_backends_answer_500_in_proportion",
        f"{_MATCHING}::test_service_without_ready_endpoints_answers_503",
        f"{_FILTERS}::test_request_header_modifier",
        f"{_FILTERS}::test_request_header_add_joins_repeated_request_headers",
        f"{_GATEWAY}::test_hostname_intersection",
        _GOLDEN,
    ),
    "HTTPRoute303RedirectStatusCode": (f"{_FILTERS}::test_redirect_status_codes",),
    "HTTPRoute307RedirectStatusCode": (f"{_FILTERS}::test_redirect_status_codes",),
    "HTTPRoute308RedirectStatusCode": (f"{_FILTERS}::test_redirect_status_codes",),
    "HTTPRouteBackendURLRewrite": (
        f"{_BACKEND_FILTERS}::test_backend_url_rewrite",
        f"{_BACKEND_FILTERS}::test_backend_url_rewrite_only_for_its_backend",
    ),
    "HTTPRouteBackendProtocolWebSocket": (
        "tests/e2e/test_features_websocket.py::test_websocket_backend_protocol",
        "tests/e2e/test_features_websocket.py::test_websocket_stays_open_across_reload",
        "tests/e2e/test_features_websocket.py::test_websocket_through_https_listener",
        "tests/dataplane/test_upgrade.py",
    ),
    "HTTPRouteBackendRequestRedirect": (
        f"{_BACKEND_FILTERS}::test_backend_request_redirect",
        f"{_BACKEND_FILTERS}::test_backend_request_redirect_only_for_its_backend",
    ),
    "HTTPRouteBackendProtocolH2C": (
        "tests/e2e/test_http2.py::test_h2c_backend_route_is_accepted",
        "tests/e2e/test_http2.py::test_http1_client_to_h2c_backend",
        "tests/e2e/test_http2.py::test_h2c_prior_knowledge_to_h2c_backend",
        "tests/e2e/test_grpc_transport.py::test_unary_with_metadata_both_ways",
        _GOLDEN,
    ),
    "HTTPRouteBackendRequestHeaderModification": (
        f"{_FILTERS}::test_backend_request_header_modifier_only_for_the_chosen_backend",
    ),
    "HTTPRouteCORS": (
        f"{_CORS}::test_route_accepted",
        f"{_CORS}::test_preflight_exact_and_wildcard_origins",
        f"{_CORS}::test_preflight_from_non_matching_origin",
        f"{_CORS}::test_simple_request_from_allowed_origin",
        f"{_CORS}::test_simple_request_from_non_matching_origin",
        f"{_CORS}::test_preflight_wildcard_methods_without_credentials",
        f"{_CORS}::test_wildcard_origin",
        f"{_CORS}::test_wildcard_methods_and_headers_with_credentials",
        f"{_CORS}::test_wildcard_methods_and_headers_without_credentials",
        "tests/dataplane/test_cors.py",
    ),
    "HTTPRouteDestinationPortMatching": (
        f"{_GATEWAY}::test_parent_ref_port_without_listener",
        f"{_GATEWAY}::test_parent_ref_port",
    ),
    "HTTPRouteHostRewrite": (f"{_FILTERS}::test_url_rewrite_host_and_path",),
    "HTTPRouteMethodMatching": (f"{_MATCHING}::test_method_matching",),
    "HTTPRouteNamedRouteRule": (f"{_GATEWAY}::test_named_route_rule",),
    "HTTPRouteRequestTimeout": (
        f"{_TIMEOUTS}::test_request_timeout",
        f"{_TIMEOUTS}::test_request_timeout_disabled_by_zero",
    ),
    "HTTPRouteBackendTimeout": (f"{_TIMEOUTS}::test_backend_request_timeout",),
    "HTTPRouteParentRefPort": (f"{_GATEWAY}::test_parent_ref_port",),
    "HTTPRoutePathRedirect": (f"{_FILTERS}::test_redirect_path",),
    "HTTPRoutePathRewrite": (f"{_FILTERS}::test_url_rewrite_host_and_path",),
    "HTTPRoutePortRedirect": (f"{_FILTERS}::test_redirect_port_and_scheme",),
    "HTTPRouteQueryParamMatching": (f"{_MATCHING}::test_query_param_matching",),
    "HTTPRouteRequestMirror": (
        f"{_FILTERS}::test_request_mirror",
        "tests/e2e/test_features_mirror_body.py::test_request_mirror_with_body",
        "tests/e2e/test_features_mirror_body.py::test_stalled_mirror_does_not_hold_back_the_primary",
    ),
    "HTTPRouteRequestMultipleMirrors": (f"{_FILTERS}::test_request_multiple_mirrors",),
    "HTTPRouteRequestPercentageMirror": (f"{_FILTERS}::test_request_percentage_mirror",),
    "HTTPRouteResponseHeaderModification": (f"{_FILTERS}::test_response_header_modifier",),
    "HTTPRouteRetry": (
        f"{_RETRY}::test_retry_on_listed_codes",
        f"{_RETRY}::test_no_retry_on_unlisted_code",
    ),
    "HTTPRouteRetryBackendTimeout": (
        f"{_RETRY}::test_retry_on_backend_request_timeout",
        f"{_RETRY}::test_retries_within_request_timeout",
    ),
    "HTTPRouteRetryConnectionError": (f"{_RETRY}::test_retry_on_connection_reset",),
    "HTTPRouteSchemeRedirect": (f"{_FILTERS}::test_redirect_port_and_scheme",),
    "ListenerSet": (
        "tests/e2e/test_features_listenerset.py::test_listener_set_status",
        "tests/e2e/test_features_listenerset.py::test_routing_through_listener_sets",
        "tests/e2e/test_features_listenerset.py::test_listener_set_removed_and_restored",
        _GOLDEN,
    ),
    "TCPRoute": (
        f"{_TCP}::test_route_by_port_and_section_name",
        f"{_TCP}::test_echo_and_half_close",
        f"{_TCP}::test_large_stream_both_ways",
        f"{_TCP}::test_multiple_routes_only_oldest_gets_traffic",
        f"{_TCP}::test_weighted_backends",
        f"{_TCP}::test_nonexistent_backend_rejects_connections",
        f"{_TCP}::test_cross_namespace_backend_needs_reference_grant",
        f"{_TCP}::test_reload_keeps_established_connections",
        "tests/dataplane/test_l4.py",
        _GOLDEN,
    ),
    "TLSRoute": (
        f"{_TLS_ROUTE}::test_passthrough_routes_by_sni",
        f"{_TLS_ROUTE}::test_passthrough_rejects_unmatched_sni",
        f"{_TLS_ROUTE}::test_passthrough_stream_echoes",
        "tests/dataplane/test_clienthello.py",
        _GOLDEN,
    ),
    "TLSRouteModeTerminate": (f"{_TLS_ROUTE}::test_terminate_forwards_plaintext",),
    "TLSRouteModeMixed": (f"{_TLS_ROUTE}::test_mixed_terminate_and_passthrough_on_one_port",),
    "UDPRoute": (
        f"{_UDP}::test_udp_echo_with_several_clients",
        f"{_UDP}::test_idle_sessions_expire",
        f"{_UDP}::test_weighted_backends",
        f"{_UDP}::test_cross_namespace_backend_without_grant_drops",
        _GOLDEN,
    ),
    "ReferenceGrant": (
        "tests/e2e/test_run.py::test_reference_grant_revocation",
        f"{_MATCHING}::test_cross_namespace_backend_needs_reference_grant",
        f"{_TCP}::test_cross_namespace_backend_needs_reference_grant",
        _GOLDEN,
    ),
}


def supported_features() -> list[str]:
    return sorted(FEATURE_TESTS)
