"""GRPCRoute rules: what turnout cannot honour, per field (GEP-1016).

Part of the graph (Snapshot -> **graph** -> status, IR). Attachment, backend resolution
and status are shared with HTTPRoute in `turnout.graph.routes`; only the checks that
depend on GRPCRoute's own fields live here. A rule with a problem is dropped and the
route says why (Accepted=False/UnsupportedValue when no rule is left, else
PartiallyInvalid), exactly as for HTTPRoute.
"""

from __future__ import annotations

from turnout.graph.regex import bad_regex
from turnout.resources.grpcroute import GRPCRouteRule

# Filters the data plane executes on gRPC requests, per position. ExtensionRef is
# handled like HTTPRoute's (unresolvable: ResolvedRefs=False and an error reply).
RULE_FILTERS = frozenset({"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror"})
BACKEND_FILTERS = frozenset({"RequestHeaderModifier", "ResponseHeaderModifier"})


def unsupported_values(rule: GRPCRouteRule, field: str) -> list[str]:
    """Fields valid per the CRD that turnout's data plane cannot honour (yet)."""
    problems: list[str] = []
    if rule.session_persistence is not None:
        problems.append(f"{field}.sessionPersistence: session persistence is not supported yet")
    for i, match in enumerate(rule.matches):
        where = f"{field}.matches[{i}]"
        method = match.method
        if method is not None and method.type == "RegularExpression":
            # Both parts become one anchored RE2 path pattern in the IR; each must be
            # valid on its own (a part is wrapped in a group, so it cannot leak).
            if method.service:
                problems.extend(bad_regex(method.service, f"{where}.method.service"))
            if method.method:
                problems.extend(bad_regex(method.method, f"{where}.method.method"))
        for j, header in enumerate(match.headers):
            if header.type == "RegularExpression":
                problems.extend(bad_regex(header.value, f"{where}.headers[{j}].value"))
    for k, flt in enumerate(rule.filters):
        if flt.type not in RULE_FILTERS and flt.type != "ExtensionRef":
            problems.append(f"{field}.filters[{k}].type: {flt.type} is not supported yet")
    for j, ref in enumerate(rule.backend_refs):
        for k, flt in enumerate(ref.filters):
            if flt.type not in BACKEND_FILTERS:
                problems.append(
                    f"{field}.backendRefs[{j}].filters[{k}].type: {flt.type} is not "
                    "supported on a backendRef yet"
                )
    return problems
