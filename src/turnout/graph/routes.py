"""Routes (HTTPRoute, GRPCRoute): rule validation, backend resolution, attachment.

One code path for every route kind; only the checks of kind-specific fields differ
(`_unsupported_values` here for HTTPRoute, `turnout.graph.grpcroute` for GRPCRoute).

Attachment (shared with the L4 kinds in `turnout.graph.attachment`) follows GEP-957 and
ParentReference: a parentRef selects listeners by
`sectionName` and `port` (none left: NoMatchingParent), keeps those whose allowedRoutes
admit the route's kind and namespace (none: NotAllowedByListeners) and whose hostname
intersects the route's hostnames (none: NoMatchingListenerHostname). Then, per listener,
an HTTPRoute and a GRPCRoute must not share a hostname (GEP-1016 "Cross Serving"): the
older route keeps it and the other is not accepted there (`turnout.graph.crossserving`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from turnout.graph import grpcroute, hostnames
from turnout.graph.attachment import Verdicts, attach_parents, resolved_refs_condition
from turnout.graph.backends import BackendResolver, BackendTarget
from turnout.graph.crossserving import reject_cross_kind
from turnout.graph.memo import RuleMemo
from turnout.graph.model import (
    GatewayNode,
    Key,
    ListenerNode,
    ListenerSetNode,
    ResolvedBackend,
    ResolvedRule,
    Route,
    RouteNode,
)
from turnout.graph.regex import bad_regex as _bad_regex
from turnout.ir.model import RetryPolicy
from turnout.resources.grpcroute import GRPCBackendRef, GRPCRouteFilter, GRPCRouteRule
from turnout.resources.httproute import (
    HTTPBackendRef,
    HTTPRouteFilter,
    HTTPRouteRule,
    SessionPersistence,
)
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c
from turnout.status.conditions import Condition
from turnout.util.duration import parse_duration

# Filters the data plane executes, per position (rule level, backendRef level).
_RULE_FILTERS = {
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
    "RequestMirror",
    "CORS",
}
# A backendRef's RequestRedirect applies only when that backendRef is chosen
# (HTTPRouteBackendRequestRedirect); its weighted share is answered with the redirect.
_BACKEND_FILTERS = {
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
}


def build_routes(
    snapshot: Snapshot,
    gateways: Mapping[Key, GatewayNode],
    listener_sets: Mapping[Key, ListenerSetNode],
    resolver: BackendResolver,
    memo: RuleMemo | None = None,
) -> tuple[dict[Key, RouteNode], dict[Key, RouteNode]]:
    """(HTTPRoute nodes, GRPCRoute nodes), attached and counted on their listeners.

    ``memo`` (graph/memo.py) lets unchanged routes reuse their rule resolution."""
    verdicts: Verdicts = {}
    http = {
        key: route_node(route, snapshot, gateways, listener_sets, resolver, memo, verdicts)
        for key, route in sorted(snapshot.http_routes.items())
    }
    grpc = {
        key: route_node(route, snapshot, gateways, listener_sets, resolver, memo, verdicts)
        for key, route in sorted(snapshot.grpc_routes.items())
    }
    settle_listeners([*http.values(), *grpc.values()])
    return http, grpc


def settle_listeners(nodes: Sequence[RouteNode]) -> None:
    """Decide GEP-1016 conflicts between the attached ``nodes`` (every HTTPRoute, then
    every GRPCRoute, each by key), then count them on their listeners."""
    # Before counting: a route that loses a hostname conflict is not attached there.
    reject_cross_kind(nodes)
    _count_attached(nodes)


def route_node(
    route: Route,
    snapshot: Snapshot,
    gateways: Mapping[Key, GatewayNode],
    listener_sets: Mapping[Key, ListenerSetNode],
    resolver: BackendResolver,
    memo: RuleMemo | None,
    verdicts: Verdicts | None = None,
) -> RouteNode:
    """The route's node: rules resolved, parents attached (not yet counted on listeners,
    nor checked against routes of the other kind: see ``build_routes``)."""
    node = RouteNode(route)
    if memo is None:
        _resolve_rules(node, resolver)
    else:
        memo.resolve_rules(node, resolver, _resolve_rules)
    attach_route(node, snapshot, gateways, listener_sets, verdicts)
    return node


def attach_route(
    node: RouteNode,
    snapshot: Snapshot,
    gateways: Mapping[Key, GatewayNode],
    listener_sets: Mapping[Key, ListenerSetNode],
    verdicts: Verdicts | None = None,
) -> None:
    """Fill ``node.parents`` (its rules resolved): the parentRefs' verdicts and the
    listeners each attaches to. Reads the rules' verdicts (``invalid``,
    ``common_conditions``), never the rules. ``verdicts``: see ``attach_parents``."""
    route = node.obj
    attach_parents(
        node,
        snapshot,
        gateways,
        listener_sets,
        hostnames_on=functools.partial(_hostnames_on, route),
        route_hostnames=route.spec.hostnames,
        verdicts=verdicts,
    )


# --- rules -----------------------------------------------------------------------------


def _resolve_rules(node: RouteNode, resolver: BackendResolver) -> None:
    # Reads only node.obj and resolver.resolve answers, and calls resolve in an order
    # set by the spec alone: RuleMemo relies on both.
    route = node.obj
    dropped: list[str] = []
    unresolved: list[Condition] = []
    rules: Sequence[HTTPRouteRule | GRPCRouteRule] = route.spec.rules
    for index, rule in enumerate(rules):
        field = f"spec.rules[{index}]"
        if isinstance(rule, HTTPRouteRule):
            problems = _unsupported_values(rule, field)
        else:
            problems = grpcroute.unsupported_values(rule, field)
        if problems:
            dropped.append("; ".join(problems))
            continue
        resolved = ResolvedRule(index, rule, [])
        backend_refs: Sequence[HTTPBackendRef | GRPCBackendRef] = rule.backend_refs
        filters: Sequence[HTTPRouteFilter | GRPCRouteFilter] = rule.filters
        for j, ref in enumerate(backend_refs):
            cluster, error = resolver.resolve(
                _target(ref.group, ref.kind, ref.namespace, ref.name, ref.port, route),
                field=f"{field}.backendRefs[{j}]",
                from_kind=route.kind,
                from_namespace=route.namespace,
            )
            resolved.backends.append(ResolvedBackend(ref.weight, cluster, error))
            if error is not None:
                unresolved.append(error)
            resolved.backend_mirror_clusters.append(
                _mirrors(
                    ref.filters, f"{field}.backendRefs[{j}].filters", route, resolver, unresolved
                )
            )
        resolved.mirror_clusters = _mirrors(
            filters, f"{field}.filters", route, resolver, unresolved
        )
        for k, flt in enumerate(filters):
            if flt.type == "ExtensionRef":
                resolved.unresolved_extension = True
                ext = flt.extension_ref
                shown = f"{ext.group}/{ext.kind} {ext.name}" if ext is not None else "?"
                unresolved.append(
                    c.route_unresolved_refs(
                        c.ROUTE_RESOLVED_REFS_INVALID_KIND,
                        f"{field}.filters[{k}].extensionRef: turnout has no filter {shown}; "
                        "requests matching this rule get 500",
                    )
                )
        node.rules.append(resolved)
    if dropped and not node.rules:
        node.invalid = c.route_unsupported_value("; ".join(dropped))
    elif dropped:
        node.common_conditions.append(
            c.route_partially_invalid("Dropped Rule(s): " + "; ".join(dropped))
        )
    node.common_conditions.insert(0, resolved_refs_condition(unresolved))


def _target(
    group: str, kind: str, namespace: str | None, name: str, port: int | None, route: Route
) -> BackendTarget:
    return BackendTarget(group, kind, namespace or route.namespace, name, port)


def _mirrors(
    filters: Sequence[HTTPRouteFilter | GRPCRouteFilter],
    field: str,
    route: Route,
    resolver: BackendResolver,
    unresolved: list[Condition],
) -> list[str | None]:
    clusters: list[str | None] = []
    for k, flt in enumerate(filters):
        mirror = flt.request_mirror
        if flt.type != "RequestMirror" or mirror is None:
            continue
        ref = mirror.backend_ref
        cluster, error = resolver.resolve(
            _target(ref.group, ref.kind, ref.namespace, ref.name, ref.port, route),
            field=f"{field}[{k}].requestMirror.backendRef",
            from_kind=route.kind,
            from_namespace=route.namespace,
        )
        if error is not None:
            unresolved.append(error)
        clusters.append(cluster)
    return clusters


def _unsupported_values(rule: HTTPRouteRule, field: str) -> list[str]:
    """Fields valid per the CRD that turnout's data plane cannot honour (yet)."""
    problems: list[str] = []
    if rule.retry is not None:
        problems.extend(parse_retry(rule.retry, f"{field}.retry")[1])
    if rule.session_persistence is not None:
        problems.extend(
            _session_persistence(rule.session_persistence, f"{field}.sessionPersistence")
        )
    for i, match in enumerate(rule.matches):
        where = f"{field}.matches[{i}]"
        if match.path.type == "RegularExpression":
            problems.extend(_bad_regex(match.path.value, f"{where}.path.value"))
        for j, header in enumerate(match.headers):
            if header.type == "RegularExpression":
                problems.extend(_bad_regex(header.value, f"{where}.headers[{j}].value"))
        for j, param in enumerate(match.query_params):
            if param.type == "RegularExpression":
                problems.extend(_bad_regex(param.value, f"{where}.queryParams[{j}].value"))
    for k, flt in enumerate(rule.filters):
        if flt.type not in _RULE_FILTERS and flt.type != "ExtensionRef":
            problems.append(f"{field}.filters[{k}].type: {flt.type} is not supported yet")
    for j, ref in enumerate(rule.backend_refs):
        for k, flt in enumerate(ref.filters):
            if flt.type not in _BACKEND_FILTERS:
                problems.append(
                    f"{field}.backendRefs[{j}].filters[{k}].type: {flt.type} is not "
                    "supported on a backendRef yet"
                )
    return problems


# What a Cookie Path attribute may hold (RFC 6265 4.1.1 path-value: no CTL, no ";").
_COOKIE_PATH = re.compile(r"/[\x21-\x3a\x3c-\x7e]*")


def _session_persistence(spec: SessionPersistence, field: str) -> list[str]:
    """GEP-1619 values turnout cannot honour: a zero absoluteTimeout (no session could
    live) and a cookie path that is not a plain URL path (it would inject attributes).
    Fields the API does not define (sessionName/idleTimeout of earlier API versions)
    were dropped by the loader with a warning, as the API server prunes them."""
    problems: list[str] = []
    if spec.absolute_timeout is not None and not parse_duration(spec.absolute_timeout):
        problems.append(f"{field}.absoluteTimeout: must be longer than 0s")
    if spec.cookie is not None and _COOKIE_PATH.fullmatch(spec.cookie.path) is None:
        problems.append(
            f"{field}.cookie.path: {spec.cookie.path!r} is not a cookie path "
            "(starts with /, no spaces, semicolons or control characters)"
        )
    return problems


# HTTPRouteRetry.Codes: HTTPRouteRetryStatusCode is 400-599; MUST support 500/502/503/504.
_RETRY_CODE_RANGE = range(400, 600)


def parse_retry(raw: Mapping[str, object], field: str) -> tuple[RetryPolicy | None, list[str]]:
    """The experimental ``rules[].retry`` stanza (kept as a dict by the loader), validated.

    ``attempts`` unset means one retry; ``codes`` unset means only connection errors and
    backendRequest timeouts are retried (GEP-1731 leaves both to the implementation).
    """
    problems: list[str] = []
    codes: list[int] = []
    raw_codes = raw.get("codes", [])
    if not isinstance(raw_codes, list):
        problems.append(f"{field}.codes: must be a list of HTTP status codes")
    else:
        for i, code in enumerate(raw_codes):
            if isinstance(code, bool) or not isinstance(code, int) or code not in _RETRY_CODE_RANGE:
                problems.append(f"{field}.codes[{i}]: must be an HTTP status code from 400 to 599")
            elif code not in codes:
                codes.append(code)
    attempts = raw.get("attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        problems.append(f"{field}.attempts: must be an integer >= 0")
        attempts = 0
    backoff = 0.0
    raw_backoff = raw.get("backoff")
    if raw_backoff is not None:
        try:
            backoff = parse_duration(raw_backoff) if isinstance(raw_backoff, str) else -1.0
        except ValueError:
            backoff = -1.0
        if backoff < 0:
            problems.append(
                f"{field}.backoff: must be a Duration such as 100ms or 1s, got {raw_backoff!r}"
            )
    for key in sorted(set(raw) - {"codes", "attempts", "backoff"}):
        problems.append(f"{field}.{key}: unknown field")
    if problems:
        return None, problems
    return RetryPolicy(attempts=attempts, codes=tuple(sorted(codes)), backoff=backoff), []


# --- attachment ------------------------------------------------------------------------


def _hostnames_on(route: Route, listener: ListenerNode) -> list[str]:
    return hostnames.effective_hostnames(listener.spec.hostname, route.spec.hostnames)


def _count_attached(nodes: Sequence[RouteNode]) -> None:
    """AttachedRoutes counts each Accepted route once per listener."""
    for node in nodes:
        seen: set[int] = set()
        for parent in node.parents:
            for listener, hosts in parent.listeners:
                if id(listener) in seen:
                    continue
                seen.add(id(listener))
                listener.attached_routes += 1
                listener.routes.append((node, hosts))
