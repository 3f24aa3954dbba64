"""router: compiles an ``ir.Config`` into the lookup tables the HTTP/1.1 data plane executes.

Place in the pipeline: ``ir.Config`` (from the control plane) -> :func:`compile_routes` ->
:class:`RouteTable` -> read by :mod:`turnout.dataplane.http1` once per request, when the
request head has been parsed.

Everything that can be decided before traffic arrives is decided here: host names are
lower-cased bytes in dicts, path matchers are closures over bytes, regular expressions are
compiled once with re2, weighted backend choice is a cumulative-weight table, filters are
merged (rule filters, then backendRef filters) and turned into byte-level operations.
Per request the data plane does::

    vhost = socket_table.lookup(host_header)      # one dict hit in the steady state
    rule = vhost.select(path, view)               # one dict hit (+ the candidates' conditions)
    target = rule.forward.choose()               # weighted choice

A ``RouteTable`` is immutable once built; swapping configurations means building a new one
and replacing a reference, which is atomic for requests already routed. Virtual hosts that
did not change keep their compiled ``VirtualHostTable`` (:mod:`turnout.dataplane.reuse`).

All regexes use re2 ``fullmatch`` semantics (what Envoy does for safe_regex), for paths,
header values and query parameter values alike.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import re2

from turnout import ir
from turnout.dataplane.filters import Cors, HeaderEdit, Redirect, Rewrite
from turnout.dataplane.policy import RoutePolicy, compile_policy
from turnout.dataplane.session import StickyRule
from turnout.dataplane.session import use_key as use_session_key
from turnout.ir.model import StringMatchType

if TYPE_CHECKING:
    from turnout.dataplane.reuse import CompiledHosts
    from turnout.dataplane.upstream import UpstreamCluster

T = TypeVar("T")
SocketKey = tuple[str, int]

# Caches keyed on request bytes are bounded so hostile clients cannot grow them forever.
_CACHE_LIMIT: Final = 4096

# A compiled predicate over the routing view of one request.
Condition = Callable[["RequestView"], bool]
PathMatcher = Callable[[bytes], bool]


# --- the routing view of a request ----------------------------------------------------------


class RequestView:
    """What header/query conditions look at; built only for virtual hosts that need it."""

    __slots__ = ("_header_map", "_query", "_query_map", "headers", "method")

    def __init__(
        self, method: bytes, headers: Sequence[tuple[bytes, bytes, bytes]], query: bytes
    ) -> None:
        self.method = method
        # (lower-case name, name as received, value)
        self.headers = headers
        self._query = query
        self._header_map: dict[bytes, bytes] | None = None
        self._query_map: dict[bytes, bytes] | None = None

    def header(self, lname: bytes) -> bytes | None:
        """The value of a header, repeated lines joined with "," (RFC 9110 5.3)."""
        hmap = self._header_map
        if hmap is None:
            hmap = {}
            for lower, _name, value in self.headers:
                old = hmap.get(lower)
                hmap[lower] = value if old is None else old + b"," + value
            self._header_map = hmap
        return hmap.get(lname)

    def query_param(self, name: bytes) -> bytes | None:
        """The first value of a query parameter (names are case-sensitive)."""
        qmap = self._query_map
        if qmap is None:
            qmap = parse_query(self._query)
            self._query_map = qmap
        return qmap.get(name)


def parse_query(query: bytes) -> dict[bytes, bytes]:
    """First value of each query parameter, percent-decoded ('+' is a space)."""
    from urllib.parse import unquote_to_bytes

    result: dict[bytes, bytes] = {}
    for part in query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        name = unquote_to_bytes(name.replace(b"+", b" "))
        if name not in result:
            result[name] = unquote_to_bytes(value.replace(b"+", b" "))
    return result


# --- host name selection (listeners and virtual hosts) ----------------------------------------


class HostMap(Generic[T]):
    """Most-specific-wins host name lookup: exact, then longest wildcard, then catch-all."""

    __slots__ = ("default", "exact", "wildcards")

    def __init__(self) -> None:
        self.exact: dict[bytes, T] = {}
        self.wildcards: list[tuple[bytes, T]] = []  # (".example.com", value), longest first
        self.default: T | None = None

    def add(self, hostname: str | None, value: T) -> None:
        """Register ``value`` for ``hostname``; the first registration of a name wins."""
        if hostname is None or hostname == "*":
            if self.default is None:
                self.default = value
            return
        name = hostname.lower().encode("idna" if not hostname.isascii() else "ascii")
        if name.startswith(b"*."):
            suffix = name[1:]
            if all(s != suffix for s, _ in self.wildcards):
                self.wildcards.append((suffix, value))
                self.wildcards.sort(key=lambda item: len(item[0]), reverse=True)
        else:
            self.exact.setdefault(name, value)

    def get(self, host: bytes) -> T | None:
        """``host`` must already be lower-case and without port."""
        found = self.exact.get(host)
        if found is not None:
            return found
        for suffix, value in self.wildcards:
            # "*.example.com" matches "a.example.com" and "a.b.example.com", never "example.com".
            if host.endswith(suffix) and len(host) > len(suffix):
                return value
        return self.default


def normalize_host(raw: bytes) -> bytes:
    """Host header -> lower-case name without port (IPv6 literals keep their brackets)."""
    host = raw.strip().lower()
    if host.startswith(b"["):
        end = host.find(b"]")
        return host[: end + 1] if end != -1 else host
    name, sep, port = host.rpartition(b":")
    if sep and port.isdigit():
        return name
    return host


# --- matchers ---------------------------------------------------------------------------------


def _always(_path: bytes) -> bool:
    return True


def compile_path(match: ir.PathMatch) -> PathMatcher:
    value = match.value.encode("utf-8")
    if match.type == "Exact":
        return value.__eq__
    if match.type == "PathPrefix":
        if value in (b"/", b""):
            return _always
        size = len(value)

        def prefix(path: bytes) -> bool:
            # Segment-aware: "/abc" matches "/abc", "/abc/", "/abc/def", never "/abcd".
            return path.startswith(value) and (len(path) == size or path[size] == 0x2F)

        return prefix
    pattern = re2.compile(value)
    return lambda path: pattern.fullmatch(path) is not None


def _string_matcher(kind: StringMatchType, value: str) -> Callable[[bytes], bool]:
    expected = value.encode("utf-8")
    if kind == "Exact":
        return expected.__eq__
    pattern = re2.compile(expected)
    return lambda actual: pattern.fullmatch(actual) is not None


def compile_conditions(match: ir.RouteMatch) -> tuple[Condition, ...]:
    """Header, query parameter and method conditions (all must hold)."""
    conditions: list[Condition] = []
    if match.method is not None:
        method = match.method.encode("ascii")
        conditions.append(lambda req: req.method == method)
    for header in match.headers:
        lname = header.name.lower().encode("ascii")
        test = _string_matcher(header.type, header.value)
        conditions.append(_header_condition(lname, test))
    for param in match.query_params:
        name = param.name.encode("utf-8")
        test = _string_matcher(param.type, param.value)
        conditions.append(_query_condition(name, test))
    return tuple(conditions)


def _header_condition(lname: bytes, test: Callable[[bytes], bool]) -> Condition:
    def condition(req: RequestView) -> bool:
        value = req.header(lname)
        return value is not None and test(value)

    return condition


def _query_condition(name: bytes, test: Callable[[bytes], bool]) -> Condition:
    def condition(req: RequestView) -> bool:
        value = req.query_param(name)
        return value is not None and test(value)

    return condition


# --- what a matched rule does -----------------------------------------------------------------


class Mirror:
    __slots__ = ("cluster", "probability")

    def __init__(self, cluster: UpstreamCluster, probability: float) -> None:
        self.cluster = cluster
        self.probability = probability


class Target:
    """One outcome of a rule: answer with ``status``, redirect, or forward to ``cluster``.

    Filters are already merged: the rule's first, then the chosen backendRef's.
    """

    __slots__ = (
        "cluster",
        "mirrors",
        "policy",
        "redirect",
        "request_edits",
        "response_edits",
        "rewrite",
        "status",
    )

    def __init__(
        self,
        *,
        status: int | None = None,
        redirect: Redirect | None = None,
        cluster: UpstreamCluster | None = None,
        request_edits: tuple[HeaderEdit, ...] = (),
        response_edits: tuple[HeaderEdit, ...] = (),
        rewrite: tuple[Rewrite, ...] = (),
        mirrors: tuple[Mirror, ...] = (),
        policy: RoutePolicy | None = None,
    ) -> None:
        self.status = status
        self.redirect = redirect
        self.cluster = cluster
        self.request_edits = request_edits
        self.response_edits = response_edits
        self.rewrite = rewrite
        self.mirrors = mirrors
        self.policy = policy  # timeouts and retries; None for most rules

    def with_response_edit(self, edit: HeaderEdit) -> Target:
        """A copy whose response also gets ``edit`` (per-request CORS headers)."""
        return Target(
            status=self.status,
            redirect=self.redirect,
            cluster=self.cluster,
            request_edits=self.request_edits,
            response_edits=(*self.response_edits, edit),
            rewrite=self.rewrite,
            mirrors=self.mirrors,
            policy=self.policy,
        )


class Rule:
    """A compiled HTTPRouteRule: a path matcher, extra conditions and a weighted choice."""

    __slots__ = (
        "_cumulative",
        "_targets",
        "_total",
        "conditions",
        "cors",
        "name",
        "path",
        "sticky",
    )

    def __init__(
        self,
        name: str,
        path: PathMatcher,
        conditions: tuple[Condition, ...],
        weighted: Sequence[tuple[int, Target]],
        cors: Cors | None = None,
        sticky: StickyRule | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.conditions = conditions
        self.cors = cors  # the rule's CORS filter; None for most rules
        self.sticky = sticky  # sessionPersistence (GEP-1619); None for most rules
        live = [(w, t) for w, t in weighted if w > 0]  # weight 0 is never chosen
        self._targets = tuple(t for _, t in live)
        cumulative: list[float] = []
        total = 0
        for weight, _ in live:
            total += weight
            cumulative.append(total)
        self._cumulative = cumulative
        self._total = float(total)

    def choose(self) -> Target:
        targets = self._targets
        if len(targets) == 1:
            return targets[0]
        return targets[bisect_right(self._cumulative, random.random() * self._total)]


class VirtualHostTable:
    """The precedence-ordered rules for one host name of one listener."""

    __slots__ = ("_cache", "needs_view", "rules")

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self.needs_view = any(rule.conditions for rule in rules)
        # Path matchers depend on the path alone: per path, the rules whose path matches,
        # in precedence order, up to the first one without conditions (nothing after it
        # can be selected). A request then costs one dict hit plus its candidates'
        # header/query/method conditions, whatever the number of rules.
        self._cache: dict[bytes, tuple[Rule, ...]] = {}

    def select(self, path: bytes, view: RequestView | None) -> Rule | None:
        """First rule whose match holds. ``view`` is required when ``needs_view``."""
        cache = self._cache
        candidates = cache.get(path)
        if candidates is None:
            candidates = self._candidates(path)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[path] = candidates
        for rule in candidates:
            conditions = rule.conditions
            if not conditions or all(cond(view) for cond in conditions):  # type: ignore[arg-type]
                return rule
        return None

    def _candidates(self, path: bytes) -> tuple[Rule, ...]:
        found: list[Rule] = []
        for rule in self.rules:
            if rule.path(path):
                found.append(rule)
                if not rule.conditions:
                    break
        return tuple(found)


class ListenerTable:
    __slots__ = ("name", "virtual_hosts")

    def __init__(self, name: str, virtual_hosts: HostMap[VirtualHostTable]) -> None:
        self.name = name
        self.virtual_hosts = virtual_hosts


_MISS: Final = object()


class SocketTable:
    """All HTTP listeners sharing one (address, port)."""

    __slots__ = ("_cache", "listeners")

    def __init__(self) -> None:
        self.listeners: HostMap[ListenerTable] = HostMap()
        self._cache: dict[bytes, VirtualHostTable | None] = {}

    def lookup(self, raw_host: bytes) -> VirtualHostTable | None:
        """Host header as received -> virtual host (listener, then host within it)."""
        found = self._cache.get(raw_host, _MISS)
        if found is not _MISS:
            return found  # type: ignore[return-value]
        host = normalize_host(raw_host)
        listener = self.listeners.get(host)
        vhost = None if listener is None else listener.virtual_hosts.get(host)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[raw_host] = vhost
        return vhost


class RouteTable:
    """A compiled configuration: one SocketTable per bound (address, port)."""

    __slots__ = ("errors", "sockets", "version")

    def __init__(self, version: int) -> None:
        self.version = version
        self.sockets: dict[SocketKey, SocketTable] = {}
        self.errors: list[str] = []


# --- compilation ------------------------------------------------------------------------------


def compile_routes(
    config: ir.Config,
    clusters: Mapping[str, UpstreamCluster],
    reuse: CompiledHosts | None = None,
    gateway_clusters: Mapping[str, Mapping[str, UpstreamCluster]] | None = None,
) -> RouteTable:
    """Build the lookup tables for the HTTP listeners of ``config``.

    ``clusters`` maps cluster names to the data plane's upstream objects. Problems (a bad
    regex, a missing cluster) are collected in ``RouteTable.errors``; the offending rule
    answers 500 instead of failing the whole configuration. ``reuse`` (kept by the caller,
    ``begin()`` once per configuration) hands back unchanged virtual hosts' tables.
    ``gateway_clusters`` replaces ``clusters`` for the Gateways it names (those that
    present a client certificate to TLS backends).
    """
    table = RouteTable(config.version)
    use_session_key(config.session_key)
    for gateway in config.gateways:
        if gateway_clusters and gateway.name in gateway_clusters:
            clusters_used = gateway_clusters[gateway.name]
        else:
            clusters_used = clusters
        for listener in gateway.listeners:
            if listener.protocol != "HTTP":
                continue
            key = (listener.address, listener.port)
            socket_table = table.sockets.get(key)
            if socket_table is None:
                socket_table = table.sockets[key] = SocketTable()
            compiled = compile_listener(listener, clusters_used, table.errors, reuse)
            socket_table.listeners.add(listener.hostname, compiled)
    return table


def compile_listener(
    listener: ir.Listener,
    clusters: Mapping[str, UpstreamCluster],
    errors: list[str],
    reuse: CompiledHosts | None = None,
) -> ListenerTable:
    """``reuse``: compiled virtual hosts of the previous configuration (see
    ``turnout.dataplane.reuse``); the tables are the same without it."""
    vhosts: HostMap[VirtualHostTable] = HostMap()
    for vhost in listener.virtual_hosts:
        if reuse is None:
            table = compile_virtual_host(vhost, listener, clusters, errors)
        else:
            table = reuse.virtual_host(listener, vhost, clusters, errors, compile_virtual_host)
        vhosts.add(vhost.hostname, table)
    return ListenerTable(listener.name, vhosts)


def compile_virtual_host(
    vhost: ir.VirtualHost,
    listener: ir.Listener,
    clusters: Mapping[str, UpstreamCluster],
    errors: list[str],
) -> VirtualHostTable:
    """Reads only its arguments, and clusters by name (what CompiledHosts checks)."""
    return VirtualHostTable(
        tuple(_compile_rule(rule, listener, clusters, errors) for rule in vhost.routes)
    )


def _compile_rule(
    rule: ir.HTTPRouteRule,
    listener: ir.Listener,
    clusters: Mapping[str, UpstreamCluster],
    errors: list[str],
) -> Rule:
    try:
        path = compile_path(rule.match.path)
        conditions = compile_conditions(rule.match)
    except re2.error as exc:
        errors.append(f"{rule.name}: invalid regular expression: {exc}")
        return Rule(rule.name, _always, (), [(1, Target(status=500))])
    cors = None if rule.filters.cors is None else Cors(rule.filters.cors)
    if rule.direct_status is not None:
        return Rule(rule.name, path, conditions, [(1, Target(status=rule.direct_status))], cors)
    if rule.filters.redirect is not None:
        target = _redirect(rule, rule.filters.redirect, listener, errors)
        return Rule(rule.name, path, conditions, [(1, target)], cors)
    weighted = [
        (backend.weight, _compile_target(rule, backend, listener, clusters, errors))
        for backend in rule.backends
    ]
    if not any(weight > 0 for weight, _ in weighted):
        # The control plane sets direct_status for this; be safe if it did not.
        return Rule(rule.name, path, conditions, [(1, Target(status=500))], cors)
    sticky = None
    if rule.session_persistence is not None:
        targets = [target for _, target in weighted]
        tls = listener.protocol == "HTTPS"
        sticky = StickyRule(rule.session_persistence, targets, tls=tls)
    return Rule(rule.name, path, conditions, weighted, cors, sticky)


def _redirect(
    rule: ir.HTTPRouteRule, redirect: ir.RequestRedirect, listener: ir.Listener, errors: list[str]
) -> Target:
    scheme = "https" if listener.protocol == "HTTPS" else "http"
    try:
        return Target(
            redirect=Redirect(redirect, listener_scheme=scheme, spec_port=listener.spec_port)
        )
    except ValueError as exc:  # would let a Location split or inject a header line
        errors.append(f"{rule.name}: {exc}")
        return Target(status=500)


def _compile_target(
    rule: ir.HTTPRouteRule,
    backend: ir.WeightedBackend,
    listener: ir.Listener,
    clusters: Mapping[str, UpstreamCluster],
    errors: list[str],
) -> Target:
    if backend.error_status is not None:
        return Target(status=backend.error_status)
    chain = [rule.filters] if backend.filters is None else [rule.filters, backend.filters]
    redirect = next((f.redirect for f in chain if f.redirect is not None), None)
    if redirect is not None:
        return _redirect(rule, redirect, listener, errors)
    cluster = None if backend.cluster is None else clusters.get(backend.cluster)
    if cluster is None:
        errors.append(f"{rule.name}: unknown cluster {backend.cluster!r}")
        return Target(status=500)
    mirrors: list[Mirror] = []
    for filters in chain:
        for mirror in filters.mirrors:
            mirror_cluster = clusters.get(mirror.cluster)
            if mirror_cluster is None or mirror.denominator <= 0 or mirror.numerator <= 0:
                continue
            mirrors.append(Mirror(mirror_cluster, min(1.0, mirror.numerator / mirror.denominator)))
    try:
        request_edits = tuple(
            HeaderEdit.compile(f.request_headers) for f in chain if f.request_headers
        )
        response_edits = tuple(
            HeaderEdit.compile(f.response_headers) for f in chain if f.response_headers
        )
        rewrite = tuple(Rewrite(f.rewrite) for f in chain if f.rewrite is not None)
    except ValueError as exc:  # would let a filter split or inject a header line
        errors.append(f"{rule.name}: {exc}")
        return Target(status=500)
    return Target(
        cluster=cluster,
        request_edits=request_edits,
        response_edits=response_edits,
        rewrite=rewrite,
        mirrors=tuple(mirrors),
        policy=compile_policy(rule),
    )
