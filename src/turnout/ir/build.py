"""Compile the Graph into the IR the data plane serves.

Route precedence is decided here, once (HTTPRoute.spec.rules and Listener.hostname doc
comments): rules are ordered by hostname specificity (exact hostnames, then longer
wildcards, then no hostname), then by the HTTPRouteMatch precedence list:

1. Exact path, then RegularExpression path (longer pattern first; implementation-
   specific: regexes are more specific than prefixes, as in Envoy Gateway), then
   PathPrefix with the most characters;
2. a method match; 3. the most header matches; 4. the most query param matches;
5. the oldest Route; 6. Route `{namespace}/{name}` alphabetically;
7. rule order, then match order, within a Route.

GRPCRoute rules become the same IR rules (``turnout.ir.grpcroute`` turns method matches
into path matches) ordered by GRPCRouteRule.Matches precedence: hostname as above, then
the most characters in the service, in the method, the most header matches, then age,
name and rule order. The two kinds never share a virtual host: the graph rejects an
HTTPRoute and a GRPCRoute whose hostnames intersect on a listener (GEP-1016).
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

import msgspec

from turnout.graph import hostnames
from turnout.graph.backendtls import UpstreamTLSSettings
from turnout.graph.model import GatewayNode, Graph, ListenerNode, ResolvedRule, RouteNode
from turnout.graph.routes import parse_retry
from turnout.ir import grpcroute, l4
from turnout.ir import model as ir
from turnout.ir.reuse import BuildCache, KeyedRule, RouteRules, SortKey
from turnout.resources.grpcroute import (
    GRPCHeaderMatch,
    GRPCRouteFilter,
    GRPCRouteMatch,
    GRPCRouteRule,
)
from turnout.resources.httproute import (
    CookieConfig,
    HTTPCORSFilter,
    HTTPHeaderFilter,
    HTTPHeaderMatch,
    HTTPPathModifier,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
    SessionPersistence,
)
from turnout.util.duration import optional_timeout

_PATH_ORDER = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}


def build(
    graph: Graph,
    *,
    port_offset: int = 0,
    version: int = 0,
    cache: BuildCache | None = None,
    session_key: str = "",
) -> ir.Config:
    """The IR of ``graph``. ``cache`` (kept by the caller across builds) lets unchanged
    routes and virtual hosts reuse last build's work; the IR is the same without it.
    ``session_key`` (a secret drawn by the caller) is passed through to the data plane."""
    memo = cache if cache is not None else BuildCache()
    memo.begin()
    clusters = {}
    for name, endpoints in sorted(graph.clusters.items()):
        protocol = graph.cluster_protocols.get(name)
        tls = graph.cluster_tls.get(name)
        clusters[name] = memo.cluster(
            name,
            (endpoints, protocol, tls),
            functools.partial(_cluster, name, endpoints, protocol, tls),
        )
    gateways = [
        _gateway(gateway, port_offset, memo)
        for gateway in graph.gateways.values()
        if gateway.accepted and gateway.address is not None
    ]
    return ir.Config(
        version=version, gateways=tuple(gateways), clusters=clusters, session_key=session_key
    )


def _cluster(
    name: str,
    endpoints: list[tuple[str, int]],
    protocol: str | None,
    tls: UpstreamTLSSettings | None,
) -> ir.Cluster:
    return ir.Cluster(
        name,
        tuple(ir.Endpoint(a, p) for a, p in endpoints),
        protocol=_cluster_protocol(protocol),
        tls=_upstream_tls(tls),
    )


def _cluster_protocol(protocol: str | None) -> ir.ClusterProtocol:
    if protocol == "h2c":
        return "h2c"
    if protocol == "h2":  # HTTP/2 over TLS: a GRPCRoute backend with a BackendTLSPolicy
        return "h2"
    return "http1"


def _upstream_tls(settings: UpstreamTLSSettings | None) -> ir.UpstreamTLS | None:
    if settings is None:
        return None
    return ir.UpstreamTLS(
        policy=f"{settings.policy[0]}/{settings.policy[1]}",
        sni=settings.sni,
        ca_pem=settings.ca_pem,
        system_roots=settings.system_roots,
        hostnames=settings.hostnames,
        uris=settings.uris,
    )


def _gateway(gateway: GatewayNode, port_offset: int, memo: BuildCache) -> ir.Gateway:
    assert gateway.address is not None
    listeners = tuple(
        _listener(listener, gateway.address, port_offset, memo)
        if listener.spec.protocol in ("HTTP", "HTTPS")
        else l4.listener(listener, gateway.address, port_offset)  # TLS, TCP, UDP
        for listener in gateway.all_listeners  # with those of attached ListenerSets
        if listener.servable
    )
    client = gateway.backend_client_certificate
    return ir.Gateway(
        f"{gateway.namespace}/{gateway.name}",
        gateway.address,
        listeners,
        backend_client_certificate=ir.TLSCertificate(
            name=f"secret/{client.secret[0]}/{client.secret[1]}",
            cert_chain=client.cert_chain_pem,
            private_key=client.private_key_pem,
        )
        if client is not None
        else None,
    )


def _listener(
    listener: ListenerNode, address: str, port_offset: int, memo: BuildCache
) -> ir.Listener:
    groups: dict[str, list[RouteRules]] = defaultdict(list)
    for route, route_hostnames in listener.routes:
        entry = memo.kept_rules(route.obj, route.rules)
        if entry is None:
            entry = memo.new_rules(
                route.obj,
                route.rules,
                _route_rules(route),
                functools.partial(_hostname_rank, route.obj.spec.hostnames),
            )
        for hostname in route_hostnames:
            groups[hostname].append(entry)
    ordered = {
        hostname: memo.sorted_group(listener.ir_name, hostname, entries)
        for hostname, entries in groups.items()
    }
    return ir.Listener(
        name=listener.ir_name,
        address=address,
        port=listener.spec.port + port_offset,
        spec_port=listener.spec.port,
        protocol="HTTPS" if listener.spec.protocol == "HTTPS" else "HTTP",
        hostname=listener.spec.hostname,
        virtual_hosts=_virtual_hosts(listener.ir_name, ordered, memo),
        tls=_listener_tls(listener),
    )


def _listener_tls(listener: ListenerNode) -> ir.ListenerTLS | None:
    if listener.spec.protocol != "HTTPS":
        return None
    return ir.ListenerTLS(
        tuple(
            ir.TLSCertificate(
                name=f"secret/{cert.secret[0]}/{cert.secret[1]}",
                cert_chain=cert.cert_chain_pem,
                private_key=cert.private_key_pem,
                hostnames=cert.hostnames,
            )
            for cert in listener.certificates
        ),
        client_validation=_client_validation(listener),
    )


def _client_validation(listener: ListenerNode) -> ir.ClientValidation | None:
    validation = listener.client_validation
    if validation is None:
        return None
    mode: Literal["AllowValidOnly", "AllowInsecureFallback"] = (
        "AllowInsecureFallback" if validation.mode == "AllowInsecureFallback" else "AllowValidOnly"
    )
    return ir.ClientValidation(validation.ca_pem, mode)


def _hostname_rank(route_hostnames: list[str], effective: str) -> tuple[int, int]:
    """Hostname precedence of a route's rules under one effective hostname.

    HTTPRoute.Hostnames: among routes with intersecting hostnames, precedence goes to
    the route with the most characters in a matching non-wildcard hostname, then in a
    matching hostname. A route hostname `*.specific.com` narrowed to listener
    `very.specific.com` is still a wildcard match there, so it ranks after a route that
    names `very.specific.com` itself; a route without hostnames ranks last.
    """
    own = [
        h.lower() for h in route_hostnames if hostnames.intersect(effective, h.lower()) is not None
    ]
    return min((hostnames.specificity(h) for h in own), default=hostnames.specificity(None))


def _virtual_hosts(
    listener: str, groups: dict[str, tuple[ir.HTTPRouteRule, ...]], memo: BuildCache
) -> tuple[ir.VirtualHost, ...]:
    """Each virtual host holds every rule a request for it may match, in order: its own
    rules, then those of the wildcards that cover it (most specific first), then the
    catch-all's."""
    catch_all = groups.get(hostnames.ANY, ())
    result = []
    parts: tuple[tuple[ir.HTTPRouteRule, ...], ...]
    for hostname in sorted(groups, key=lambda h: (hostnames.specificity(h), h)):
        if hostname == hostnames.ANY:
            parts = (catch_all,)
        else:
            covering = (groups[w] for w in _covering_wildcards(hostname) if w in groups)
            parts = (groups[hostname], *covering, catch_all)
        result.append(memo.virtual_host(listener, hostname, parts))
    return tuple(result)


def _covering_wildcards(hostname: str) -> list[str]:
    """The wildcards that match ``hostname`` other than itself, longest first: one per
    label boundary ("a.b.c" -> "*.b.c", "*.c"), which is what hostnames.matches says."""
    return [
        wildcard
        for i, char in enumerate(hostname)
        if char == "." and i > 0 and (wildcard := "*" + hostname[i:]) != hostname
    ]


def _route_rules(route: RouteNode) -> list[KeyedRule]:
    """Reads only ``route.obj`` and ``route.rules``: the BuildCache checks exactly those."""
    meta = route.obj.metadata
    age = meta.creation_timestamp or "~"  # unknown age sorts last
    prefix = route.kind.lower()  # "httproute" / "grpcroute"
    out: list[KeyedRule] = []
    for rule in route.rules:
        spec = rule.spec
        filters = _filters(spec.filters, rule.mirror_clusters, _prefix(rule))
        backends = tuple(
            ir.WeightedBackend(
                weight=backend.weight,
                cluster=backend.cluster,
                error_status=None if backend.cluster is not None else 500,
                filters=_filters(
                    spec.backend_refs[j].filters, rule.backend_mirror_clusters[j], _prefix(rule)
                )
                if spec.backend_refs[j].filters
                else None,
            )
            for j, backend in enumerate(rule.backends)
        )
        base = ir.HTTPRouteRule(
            name="",
            match=ir.RouteMatch(ir.PathMatch("PathPrefix", "/")),
            filters=filters,
            backends=backends,
            direct_status=_direct_status(rule, filters, backends),
        )
        if isinstance(spec, HTTPRouteRule):
            session = f"{prefix}/{route.namespace}/{route.name}/rule/{rule.index}"
            base = _with_http_policies(base, spec, session)
        for m, (match, key) in enumerate(_compiled_matches(rule)):
            ir_rule = msgspec.structs.replace(
                base,
                name=f"{prefix}/{route.namespace}/{route.name}/rule/{rule.index}/match/{m}",
                match=match,
            )
            order = (*key, age, f"{route.namespace}/{route.name}", rule.index, m)
            out.append((order, ir_rule))
    return out


def _with_http_policies(
    base: ir.HTTPRouteRule, spec: HTTPRouteRule, session: str
) -> ir.HTTPRouteRule:
    """HTTPRoute-only rule settings: timeouts, retries and session persistence (GRPCRoute
    has none of them here)."""
    timeouts = spec.timeouts
    retry = None
    if spec.retry is not None:
        retry, _ = parse_retry(spec.retry, "")  # validated by the graph already
    return msgspec.structs.replace(
        base,
        request_timeout=optional_timeout(timeouts.request) if timeouts else None,
        backend_request_timeout=optional_timeout(timeouts.backend_request) if timeouts else None,
        retry=retry,
        session_persistence=_session_persistence(spec.session_persistence, session),
    )


def _session_persistence(
    spec: SessionPersistence | None, session: str
) -> ir.SessionPersistence | None:
    """GEP-1619: a cookie without a name gets one unique to its rule; Path defaults to
    "/" (CookieConfig.Path); absoluteTimeout "0s" was refused by the graph."""
    if spec is None:
        return None
    timeout = optional_timeout(spec.absolute_timeout) if spec.absolute_timeout else None
    if spec.type == "Header":
        assert spec.header is not None  # CEL: header must be specified for Header type
        return ir.SessionPersistence("Header", spec.header.name, session, absolute_timeout=timeout)
    cookie = spec.cookie or CookieConfig()
    name = cookie.name or "turnout-session-" + hashlib.sha256(session.encode()).hexdigest()[:12]
    return ir.SessionPersistence(
        "Cookie",
        name,
        session,
        path=cookie.path,
        absolute_timeout=timeout,
        permanent=cookie.lifetime_type == "Permanent",
    )


def _compiled_matches(rule: ResolvedRule) -> list[tuple[ir.RouteMatch, SortKey]]:
    """(IR match, precedence key) for each match of the rule, in rule order."""
    spec = rule.spec
    if isinstance(spec, GRPCRouteRule):
        return [
            (_grpc_match(match), grpcroute.match_key(match)) for match in grpcroute.matches(spec)
        ]
    return [(_match(match), _match_key(match)) for match in _matches(rule)]


def _matches(rule: ResolvedRule) -> list[HTTPRouteMatch]:
    """HTTPRouteRule.Matches: "If no matches are specified, the default is a prefix path
    match on '/'". The CRD default covers an omitted field, not an explicit `[]`."""
    assert isinstance(rule.spec, HTTPRouteRule)
    return rule.spec.matches or [HTTPRouteMatch()]


def _direct_status(
    rule: ResolvedRule, filters: ir.Filters, backends: tuple[ir.WeightedBackend, ...]
) -> int | None:
    if rule.unresolved_extension:
        return 500
    if filters.redirect is not None:
        return None
    # No backendRefs, or only zero weights: nothing may receive the request (500 per
    # HTTPRouteRule.BackendRefs; the data plane answers a gRPC call's 500 with
    # UNAVAILABLE, as GRPCRouteRule.BackendRefs requires).
    if not backends or sum(b.weight for b in backends) == 0:
        return 500
    return None


def _match_key(match: HTTPRouteMatch) -> SortKey:
    path = match.path
    value = _normalise_prefix(path.value) if path.type == "PathPrefix" else path.value
    return (
        _PATH_ORDER[path.type],
        -len(value),
        0 if match.method else 1,
        # Count the matches that take effect: only the first entry of a header name
        # counts (names are case-insensitive), as in _match.
        -len({header.name.lower() for header in match.headers}),
        -len({param.name for param in match.query_params}),
    )


def _normalise_prefix(value: str) -> str:
    return value.rstrip("/") or "/"


def _match(match: HTTPRouteMatch) -> ir.RouteMatch:
    path = match.path
    value = _normalise_prefix(path.value) if path.type == "PathPrefix" else path.value
    params: dict[str, ir.QueryParamMatch] = {}
    for param in match.query_params:
        params.setdefault(param.name, ir.QueryParamMatch(param.name, param.type, param.value))
    return ir.RouteMatch(
        path=ir.PathMatch(path.type, value),
        headers=_header_matches(match.headers),
        query_params=tuple(params.values()),
        method=match.method,
    )


def _grpc_match(match: GRPCRouteMatch) -> ir.RouteMatch:
    return ir.RouteMatch(
        path=grpcroute.method_path(match.method), headers=_header_matches(match.headers)
    )


def _header_matches(
    headers: Sequence[HTTPHeaderMatch | GRPCHeaderMatch],
) -> tuple[ir.HeaderMatch, ...]:
    # Only the first entry of a name counts (HTTPHeaderMatch.Name, GRPCHeaderMatch.Name).
    by_name: dict[str, ir.HeaderMatch] = {}
    for header in headers:
        name = header.name.lower()
        by_name.setdefault(name, ir.HeaderMatch(name, header.type, header.value))
    return tuple(by_name.values())


def _prefix(rule: ResolvedRule) -> str:
    """The PathPrefix a ReplacePrefixMatch replaces (CEL allows exactly one match)."""
    if not isinstance(rule.spec, HTTPRouteRule):
        return "/"  # GRPCRoute has no URLRewrite or RequestRedirect
    path = rule.spec.matches[0].path if rule.spec.matches else None
    if path is None or path.type != "PathPrefix":
        return "/"
    return _normalise_prefix(path.value)


def _filters(
    filters: Sequence[HTTPRouteFilter | GRPCRouteFilter],
    mirror_clusters: list[str | None],
    prefix: str,
) -> ir.Filters:
    request_headers = response_headers = None
    redirect = rewrite = None
    mirrors: list[ir.RequestMirror] = []
    cors = None
    mirror_index = 0
    for flt in filters:
        if flt.request_header_modifier is not None:
            request_headers = _header_modifier(flt.request_header_modifier)
        elif flt.response_header_modifier is not None:
            response_headers = _header_modifier(flt.response_header_modifier)
        elif flt.request_mirror is not None:
            cluster = mirror_clusters[mirror_index] if mirror_index < len(mirror_clusters) else None
            mirror_index += 1
            if cluster is not None:
                mirrors.append(_mirror(flt, cluster))
        elif not isinstance(flt, HTTPRouteFilter):
            continue  # an ExtensionRef: the graph made the rule answer 500
        elif flt.request_redirect is not None:
            spec = flt.request_redirect
            redirect = ir.RequestRedirect(
                scheme=spec.scheme,
                hostname=spec.hostname,
                port=spec.port,
                path=_path_modifier(spec.path, prefix),
                status_code=spec.status_code,
            )
        elif flt.url_rewrite is not None:
            spec_rw = flt.url_rewrite
            rewrite = ir.URLRewrite(spec_rw.hostname, _path_modifier(spec_rw.path, prefix))
        elif flt.cors is not None:
            cors = cors_policy(flt.cors)
    return ir.Filters(
        request_headers=request_headers,
        response_headers=response_headers,
        redirect=redirect,
        rewrite=rewrite,
        mirrors=tuple(mirrors),
        cors=cors,
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def cors_policy(spec: HTTPCORSFilter) -> ir.CORSPolicy:
    """HTTPCORSFilter -> ir.CORSPolicy: origins split into an exact set and wildcard
    patterns, normalised to lower-case ``scheme://host:port`` with the default port."""
    allow_all = False
    exact: set[str] = set()
    patterns: list[ir.OriginPattern] = []
    for origin in spec.allow_origins:
        if origin == "*":
            allow_all = True
            continue
        scheme, _, hostport = origin.lower().partition("://")
        host, sep, port_text = hostport.rpartition(":")
        if not sep:
            host, port_text = hostport, ""
        port = int(port_text) if port_text else _DEFAULT_PORTS.get(scheme, 0)
        if host == "*":
            patterns.append(ir.OriginPattern(scheme, "", port))
        elif host.startswith("*."):
            patterns.append(ir.OriginPattern(scheme, host[1:], port))
        else:
            exact.add(f"{scheme}://{host}:{port}")
    return ir.CORSPolicy(
        allow_all_origins=allow_all,
        origins=frozenset(exact),
        origin_patterns=tuple(patterns),
        allow_methods=tuple(dict.fromkeys(spec.allow_methods)),
        allow_headers=tuple(dict.fromkeys(h.lower() for h in spec.allow_headers)),
        expose_headers=tuple(dict.fromkeys(h.lower() for h in spec.expose_headers)),
        allow_credentials=bool(spec.allow_credentials),
        max_age=spec.max_age,
    )


def _mirror(flt: HTTPRouteFilter | GRPCRouteFilter, cluster: str) -> ir.RequestMirror:
    spec = flt.request_mirror
    assert spec is not None
    if spec.fraction is not None:
        return ir.RequestMirror(cluster, spec.fraction.numerator, spec.fraction.denominator)
    if spec.percent is not None:
        return ir.RequestMirror(cluster, spec.percent, 100)
    return ir.RequestMirror(cluster)


def _header_modifier(spec: HTTPHeaderFilter) -> ir.HeaderModifier:
    return ir.HeaderModifier(
        set=tuple((h.name.lower(), h.value) for h in spec.set),
        add=tuple((h.name.lower(), h.value) for h in spec.add),
        remove=tuple(name.lower() for name in spec.remove),
    )


def _path_modifier(spec: HTTPPathModifier | None, prefix: str) -> ir.PathModifier | None:
    if spec is None:
        return None
    if spec.type == "ReplaceFullPath":
        return ir.PathModifier("ReplaceFullPath", spec.replace_full_path or "/")
    return ir.PathModifier("ReplacePrefixMatch", spec.replace_prefix_match or "", prefix)
