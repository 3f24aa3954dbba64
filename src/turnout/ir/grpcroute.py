"""GRPCRoute matches compiled onto HTTP/2 request matches, and their precedence.

Part of ``turnout.ir`` (graph -> **ir.build** -> IR -> data plane). A gRPC call is an
HTTP/2 POST to ``/<service>/<method>``, so a GRPCMethodMatch acts "as if a URI match
had been used" (GEP-1016, "Matcher Types"); the data plane needs nothing gRPC-specific
to route it:

=================  ==================  ==========================================
type               service / method    path match
=================  ==================  ==========================================
Exact              both                Exact ``/S/M``
Exact              service only        PathPrefix ``/S`` (segment-wise: ``/S/...``)
Exact              method only         RegularExpression ``/[^/]+/M`` (M escaped)
RegularExpression  both                RegularExpression ``/(?:S)/(?:M)``
RegularExpression  service only        RegularExpression ``/(?:S)/[^/]+``
RegularExpression  method only         RegularExpression ``/[^/]+/(?:M)``
(no method match)                      PathPrefix ``/`` (every request)
=================  ==================  ==========================================

IR regexes are matched against the whole path (RE2 full match), which anchors them;
each user pattern sits in its own group so an alternation in it cannot reach past its
segment. The HTTP method is not matched: the spec defines matching by path and headers
only, and every gRPC call is a POST anyway.
"""

from __future__ import annotations

import re

from turnout.ir import model as ir
from turnout.resources.grpcroute import GRPCMethodMatch, GRPCRouteMatch, GRPCRouteRule

_ANY_SEGMENT = "[^/]+"


def matches(rule: GRPCRouteRule) -> list[GRPCRouteMatch]:
    """GRPCRouteRule.Matches: "If no matches are specified, the implementation MUST
    match every gRPC request"."""
    return rule.matches or [GRPCRouteMatch()]


def method_path(method: GRPCMethodMatch | None) -> ir.PathMatch:
    """The path match equivalent to a method match (table in the module docstring)."""
    # An empty string means "any", like an omitted field (GRPCMethodMatch.Service).
    service = method.service if method is not None else None
    name = method.method if method is not None else None
    if method is None or not (service or name):
        return ir.PathMatch("PathPrefix", "/")
    if method.type == "Exact":
        if service and name:
            return ir.PathMatch("Exact", f"/{service}/{name}")
        if service:
            return ir.PathMatch("PathPrefix", f"/{service}")
        return ir.PathMatch("RegularExpression", f"/{_ANY_SEGMENT}/{re.escape(name or '')}")
    service_re = f"(?:{service})" if service else _ANY_SEGMENT
    method_re = f"(?:{name})" if name else _ANY_SEGMENT
    return ir.PathMatch("RegularExpression", f"/{service_re}/{method_re}")


def match_key(match: GRPCRouteMatch) -> tuple[int, int, int, int, int]:
    """Precedence of one match, smallest first (GRPCRouteRule.Matches): the most
    characters in a matching service, then in a matching method, then the most header
    matches. Ties go to Exact over RegularExpression (implementation-specific), then to
    route age, name and rule order (added by the caller). Same shape as HTTPRoute's
    key, though the two kinds never share a virtual host (GRPCRoute.spec.hostnames)."""
    method = match.method
    service_chars = len(method.service or "") if method is not None else 0
    method_chars = len(method.method or "") if method is not None else 0
    regex = 1 if method is not None and method.type == "RegularExpression" else 0
    headers = len({header.name.lower() for header in match.headers})
    return (-service_chars, -method_chars, -headers, regex, 0)
