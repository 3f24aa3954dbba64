"""The CEL rules and cross-field checks of the route kinds, with field paths.

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph), called by
:func:`turnout.resources.validation.validate_resource` for HTTPRoute, GRPCRoute,
TCPRoute, TLSRoute and UDPRoute: parentRef distinctness, rule limits and names, match
paths and names, filter/type consistency (HTTPRoute and GRPCRoute filters share their
members), ReplacePrefixMatch, timeouts, session persistence, gRPC method names. As in
:mod:`turnout.resources.validation`, the model already passed the schema, and the rules
come from the ``+kubebuilder:validation:XValidation`` markers in ``apis/v1/*.go``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence

from turnout.resources.fields import PATH_CHARS_RE, duration_ms
from turnout.resources.grpcroute import GRPCMethodMatch, GRPCRoute, GRPCRouteFilter
from turnout.resources.httproute import (
    HTTPHeaderFilter,
    HTTPPathMatch,
    HTTPPathModifier,
    HTTPRoute,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
    SessionPersistence,
)
from turnout.resources.meta import BackendObjectReference, ParentReference
from turnout.resources.parse import FieldError
from turnout.resources.tcproute import L4_API_VERSIONS_V1, L4RouteRule, TCPRoute
from turnout.resources.tlsroute import TLSRoute
from turnout.resources.udproute import UDPRoute

Errors = Iterator[FieldError]


# --- HTTPRoute ------------------------------------------------------------------------


def http_route(route: HTTPRoute) -> Errors:
    yield from _parent_refs(route.spec.parent_refs)
    rules = route.spec.rules
    yield from _rule_limits([(rule.name, len(rule.matches)) for rule in rules])
    for i, rule in enumerate(rules):
        yield from _rule(rule, f"spec.rules[{i}]")


def _rule_limits(rules: Sequence[tuple[str | None, int]]) -> Errors:
    """At most 128 matches over all rules; rule names unique. (name, matches) per rule."""
    if sum(matches for _, matches in rules) > 128:
        yield FieldError("spec.rules", "must have at most 128 matches in total across all rules")
    rule_names: set[str] = set()
    for i, (name, _) in enumerate(rules):
        if name is not None:
            if name in rule_names:
                yield FieldError(f"spec.rules[{i}].name", f"duplicate rule name {name!r}")
            rule_names.add(name)


def _parent_refs(refs: Sequence[ParentReference]) -> Errors:
    """Refs to the same parent must set the same optional fields, to different values."""
    by_parent: dict[tuple[str, str, str, str], list[ParentReference]] = {}
    for i, ref in enumerate(refs):
        parent = (ref.group, ref.kind, ref.namespace or "", ref.name)
        earlier = by_parent.setdefault(parent, [])
        path = f"spec.parentRefs[{i}]"
        shape = (bool(ref.section_name), bool(ref.port))
        if any((bool(e.section_name), bool(e.port)) != shape for e in earlier):
            yield FieldError(
                path,
                "sectionName or port must be specified, the same way, on every parentRef "
                "that references the same parent",
            )
        elif any((e.section_name, e.port) == (ref.section_name, ref.port) for e in earlier):
            yield FieldError(
                path, "sectionName or port must be unique among parentRefs to the same parent"
            )
        earlier.append(ref)


def _rule(rule: HTTPRouteRule, path: str) -> Errors:
    for j, match in enumerate(rule.matches):
        yield from _match(match, f"{path}.matches[{j}]")
    yield from _filter_list(rule.filters, f"{path}.filters", rule)
    if rule.backend_refs:
        for j, f in enumerate(rule.filters):
            if f.type == "RequestRedirect":
                yield FieldError(
                    f"{path}.filters[{j}]",
                    "a RequestRedirect filter must not be used together with backendRefs",
                )
    for k, backend in enumerate(rule.backend_refs):
        bpath = f"{path}.backendRefs[{k}]"
        yield from _backend_port(backend, bpath)
        yield from _filter_list(backend.filters, f"{bpath}.filters", rule)
    if rule.session_persistence is not None:
        yield from _session_persistence(rule.session_persistence, f"{path}.sessionPersistence")
    timeouts = rule.timeouts
    if timeouts is not None and timeouts.request and timeouts.backend_request:
        request = duration_ms(timeouts.request)
        if request != 0 and duration_ms(timeouts.backend_request) > request:
            yield FieldError(
                f"{path}.timeouts.backendRequest",
                f"must not be longer than the request timeout ({timeouts.request})",
            )


def _session_persistence(sp: SessionPersistence, path: str) -> Errors:
    """The SessionPersistence CEL rules (apis/v1/shared_types.go)."""
    if sp.cookie is not None and sp.type != "Cookie":
        yield FieldError(f"{path}.cookie", "cookie must be nil if type is not Cookie")
    if sp.type == "Cookie" and sp.cookie is None:
        yield FieldError(f"{path}.cookie", "cookie must be specified for Cookie type")
    if sp.header is not None and sp.type != "Header":
        yield FieldError(f"{path}.header", "header must be nil if type is not Header")
    if sp.type == "Header" and sp.header is None:
        yield FieldError(f"{path}.header", "header must be specified for Header type")
    if sp.cookie is not None and sp.cookie.lifetime_type == "Permanent" and not sp.absolute_timeout:
        yield FieldError(
            f"{path}.absoluteTimeout",
            "AbsoluteTimeout must be specified when cookie lifetimeType is Permanent",
        )


def _backend_port(ref: BackendObjectReference, path: str) -> Errors:
    if ref.group == "" and ref.kind == "Service" and ref.port is None:
        yield FieldError(f"{path}.port", "required when kind is Service")


def _match(match: HTTPRouteMatch, path: str) -> Errors:
    yield from _path_match(match.path, f"{path}.path.value")
    yield from _unique_names([h.name for h in match.headers], f"{path}.headers")
    yield from _unique_names([q.name for q in match.query_params], f"{path}.queryParams")


def _unique_names(names: list[str], path: str) -> Errors:
    """listType=map with listMapKey=name: the API server rejects repeated names."""
    seen: set[str] = set()
    for k, name in enumerate(names):
        if name in seen:
            yield FieldError(f"{path}[{k}].name", f"duplicate name {name!r}")
        seen.add(name)


_PATH_FORBIDDEN = ("//", "/./", "/../", "%2f", "%2F", "#")


def _path_match(match: HTTPPathMatch, path: str) -> Errors:
    if match.type == "RegularExpression":
        return
    value = match.value
    if not value.startswith("/"):
        yield FieldError(path, "must start with '/'")
    for part in _PATH_FORBIDDEN:
        if part in value:
            yield FieldError(path, f"must not contain '{part}'")
    for suffix in ("/..", "/."):
        if value.endswith(suffix):
            yield FieldError(path, f"must not end with '{suffix}'")
    if not PATH_CHARS_RE.match(value):
        yield FieldError(
            path,
            "must only contain valid path characters (letters, digits, "
            "-/._~!$&'()*+,;=:@ and %-escapes)",
        )


# --- TCPRoute, TLSRoute, UDPRoute -----------------------------------------------------


def l4_route(route: TCPRoute | TLSRoute | UDPRoute) -> Errors:
    """CEL and version-dependent schema rules of the L4 route kinds.

    apis/v1 (and TLSRoute v1alpha3, an alias of it): ``rules`` has exactly one item and
    TLSRoute ``hostnames`` at least one; the deprecated v1alpha2 allows 16 rules with
    unique names and no hostnames.
    """
    yield from _parent_refs(route.spec.parent_refs)
    rules: Sequence[L4RouteRule] = route.spec.rules
    is_v1 = route.api_version in L4_API_VERSIONS_V1
    if is_v1 and len(rules) > 1:
        yield FieldError("spec.rules", f"must have at most 1 item in {route.api_version}")
    if is_v1 and isinstance(route, TLSRoute) and not route.spec.hostnames:
        yield FieldError("spec.hostnames", f"required (at least 1 item) in {route.api_version}")
    names: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name is not None:
            if rule.name in names:
                yield FieldError(f"spec.rules[{i}].name", f"duplicate rule name {rule.name!r}")
            names.add(rule.name)
        for j, ref in enumerate(rule.backend_refs):
            yield from _backend_port(ref, f"spec.rules[{i}].backendRefs[{j}]")


# --- filters --------------------------------------------------------------------------

_FIELD_FOR_TYPE = {
    "RequestHeaderModifier": ("request_header_modifier", "requestHeaderModifier"),
    "ResponseHeaderModifier": ("response_header_modifier", "responseHeaderModifier"),
    "RequestMirror": ("request_mirror", "requestMirror"),
    "RequestRedirect": ("request_redirect", "requestRedirect"),
    "URLRewrite": ("url_rewrite", "urlRewrite"),
    "CORS": ("cors", "cors"),
    "ExternalAuth": ("external_auth", "externalAuth"),
    "ExtensionRef": ("extension_ref", "extensionRef"),
}
_UNREPEATABLE = (
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
    "CORS",
)


def _filter_list(filters: Sequence[HTTPRouteFilter], path: str, rule: HTTPRouteRule) -> Errors:
    types = Counter(f.type for f in filters)
    if types["RequestRedirect"] and types["URLRewrite"]:
        yield FieldError(path, "RequestRedirect and URLRewrite filters cannot be used together")
    seen: set[str] = set()
    for j, f in enumerate(filters):
        fpath = f"{path}[{j}]"
        if f.type in _UNREPEATABLE and f.type in seen:
            yield FieldError(fpath, f"at most one {f.type} filter is allowed")
        seen.add(f.type)
        yield from _filter(f, fpath, rule)


def _filter(f: HTTPRouteFilter, path: str, rule: HTTPRouteRule) -> Errors:
    yield from _union_members(f, path, _FIELD_FOR_TYPE)
    yield from _modifiers_and_mirror(f, path)
    for json_name, target in (
        ("requestRedirect", f.request_redirect),
        ("urlRewrite", f.url_rewrite),
    ):
        if target is not None and target.path is not None:
            yield from _path_modifier(target.path, f"{path}.{json_name}.path", rule)
    if f.cors is not None:
        cors, cpath = f.cors, f"{path}.cors"
        for name, values in (
            ("allowOrigins", cors.allow_origins),
            ("allowMethods", cors.allow_methods),
            ("allowHeaders", cors.allow_headers),
            ("exposeHeaders", cors.expose_headers),
        ):
            yield from _set_list(list(values), f"{cpath}.{name}", wildcard=name != "exposeHeaders")


def _union_members(
    f: HTTPRouteFilter | GRPCRouteFilter, path: str, table: dict[str, tuple[str, str]]
) -> Errors:
    """The member named by ``type`` is set, and no other (the filters' CEL rules)."""
    for ftype, (attr, json_name) in table.items():
        is_set = getattr(f, attr) is not None
        if f.type == ftype and not is_set:
            yield FieldError(f"{path}.{json_name}", f"required when type is {ftype}")
        elif f.type != ftype and is_set:
            yield FieldError(f"{path}.{json_name}", f"must not be set when type is {f.type}")


def _modifiers_and_mirror(f: HTTPRouteFilter | GRPCRouteFilter, path: str) -> Errors:
    """Checks of the members HTTPRoute and GRPCRoute filters share."""
    for json_name, modifier in (
        ("requestHeaderModifier", f.request_header_modifier),
        ("responseHeaderModifier", f.response_header_modifier),
    ):
        if modifier is not None:
            yield from _header_modifier(modifier, f"{path}.{json_name}")
    if f.request_mirror is not None:
        mirror, mpath = f.request_mirror, f"{path}.requestMirror"
        yield from _backend_port(mirror.backend_ref, f"{mpath}.backendRef")
        if mirror.percent is not None and mirror.fraction is not None:
            yield FieldError(mpath, "only one of percent or fraction may be set")
        if mirror.fraction is not None and mirror.fraction.numerator > mirror.fraction.denominator:
            yield FieldError(
                f"{mpath}.fraction.numerator", "must be less than or equal to denominator"
            )


def _set_list(values: list[str], path: str, *, wildcard: bool) -> Errors:
    if wildcard and "*" in values and len(values) > 1:
        yield FieldError(path, "'*' must be the only entry when it is used")
    seen: set[str] = set()
    for k, value in enumerate(values):
        if value in seen:
            yield FieldError(f"{path}[{k}]", f"duplicate value {value!r}")
        seen.add(value)


def _header_modifier(modifier: HTTPHeaderFilter, path: str) -> Errors:
    """Only one action per header name (names compare case-insensitively)."""
    seen: dict[str, str] = {}
    entries = [("set", k, h.name) for k, h in enumerate(modifier.set)]
    entries += [("add", k, h.name) for k, h in enumerate(modifier.add)]
    entries += [("remove", k, name) for k, name in enumerate(modifier.remove)]
    for action, k, name in entries:
        where = f"{path}.{action}[{k}]" + (".name" if action != "remove" else "")
        key = name.lower()
        if key in seen:
            yield FieldError(
                where, f"header {name!r} already appears in {seen[key]}: one action per header"
            )
        else:
            seen[key] = action
    for action, headers in (("set", modifier.set), ("add", modifier.add)):
        for k, header in enumerate(headers):
            if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in header.value):
                yield FieldError(
                    f"{path}.{action}[{k}].value", "must not contain control characters"
                )


def _path_modifier(modifier: HTTPPathModifier, path: str, rule: HTTPRouteRule) -> Errors:
    for ptype, attr, json_name in (
        ("ReplaceFullPath", "replace_full_path", "replaceFullPath"),
        ("ReplacePrefixMatch", "replace_prefix_match", "replacePrefixMatch"),
    ):
        is_set = getattr(modifier, attr) is not None
        if modifier.type == ptype and not is_set:
            yield FieldError(f"{path}.{json_name}", f"required when type is {ptype}")
        elif modifier.type != ptype and is_set:
            yield FieldError(f"{path}.{json_name}", f"must not be set when type is {modifier.type}")
    for attr, json_name in (
        ("replace_full_path", "replaceFullPath"),
        ("replace_prefix_match", "replacePrefixMatch"),
    ):
        value = getattr(modifier, attr)
        if value and not PATH_CHARS_RE.match(value):
            # Written into the request line or a Location: a space, CR, LF, "?" or "#"
            # would change the message (the CRD has no pattern; turnout is stricter).
            yield FieldError(
                f"{path}.{json_name}",
                "must only contain valid path characters (letters, digits, "
                "-/._~!$&'()*+,;=:@ and %-escapes)",
            )
    if modifier.type == "ReplacePrefixMatch" and modifier.replace_prefix_match is not None:
        matches = rule.matches
        if len(matches) != 1 or matches[0].path.type != "PathPrefix":
            yield FieldError(
                f"{path}.type",
                "ReplacePrefixMatch requires the rule to have exactly one match, "
                "with a PathPrefix path",
            )


# --- GRPCRoute ------------------------------------------------------------------------

# GRPCMethodMatch CEL rules, for type Exact only (a RegularExpression is checked as RE2
# by the graph, which reports a bad one in status).
_GRPC_SERVICE_RE = re.compile(r"^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$", re.IGNORECASE)
_GRPC_METHOD_RE = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
_GRPC_FIELD_FOR_TYPE = {
    ftype: _FIELD_FOR_TYPE[ftype]
    for ftype in (
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestMirror",
        "ExtensionRef",
    )
}


def grpc_route(route: GRPCRoute) -> Errors:
    yield from _parent_refs(route.spec.parent_refs)
    rules = route.spec.rules
    yield from _rule_limits([(rule.name, len(rule.matches)) for rule in rules])
    for i, rule in enumerate(rules):
        path = f"spec.rules[{i}]"
        for j, match in enumerate(rule.matches):
            mpath = f"{path}.matches[{j}]"
            if match.method is not None:
                yield from _grpc_method(match.method, f"{mpath}.method")
            yield from _unique_names([h.name for h in match.headers], f"{mpath}.headers")
        yield from _grpc_filters(rule.filters, f"{path}.filters")
        for k, backend in enumerate(rule.backend_refs):
            bpath = f"{path}.backendRefs[{k}]"
            yield from _backend_port(backend, bpath)
            yield from _grpc_filters(backend.filters, f"{bpath}.filters")


def _grpc_method(match: GRPCMethodMatch, path: str) -> Errors:
    # The CRD defaults type to Exact, so "one of service or method" always applies.
    if match.service is None and match.method is None:
        yield FieldError(path, "one or both of service or method must be specified")
    if match.type != "Exact":
        return
    if match.service is not None and not _GRPC_SERVICE_RE.match(match.service):
        yield FieldError(
            f"{path}.service",
            f"{match.service!r} is not a valid gRPC service name "
            "(dot-separated identifiers of letters, digits and '_', e.g. 'pkg.v1.Greeter')",
        )
    if match.method is not None and not _GRPC_METHOD_RE.match(match.method):
        yield FieldError(
            f"{path}.method",
            f"{match.method!r} is not a valid gRPC method name "
            "(letters, digits and '_', not starting with a digit)",
        )


def _grpc_filters(filters: Sequence[GRPCRouteFilter], path: str) -> Errors:
    seen: set[str] = set()
    for j, f in enumerate(filters):
        fpath = f"{path}[{j}]"
        if f.type in ("RequestHeaderModifier", "ResponseHeaderModifier") and f.type in seen:
            yield FieldError(fpath, f"{f.type} filter cannot be repeated")
        seen.add(f.type)
        yield from _union_members(f, fpath, _GRPC_FIELD_FOR_TYPE)
        yield from _modifiers_and_mirror(f, fpath)
