"""What ``ir.build`` computed last time, for the parts whose inputs did not change.

Place in the pipeline: graph -> **ir.build** (with a ``BuildCache``) -> IR. A reload at
thousands of routes changes one or two of them; rebuilding every route's rules, every
hostname's precedence order and every VirtualHost costs ~100 ms at 5,000 routes, and
new IR objects also defeat the data plane's reuse of compiled virtual hosts (which
compares them). The cache keeps three levels, each checked against exactly what it
was computed from:

* a route's keyed rules: the route object (by identity: the file source hands out the
  very same frozen object while its file is unchanged) and its resolved rules (by
  value: they change when a Service, ReferenceGrant or EndpointSlice does);
* a listener hostname's rules in precedence order: the route entries that contribute
  to it, in order (by identity);
* a VirtualHost: the ordered groups it is made of (by identity);
* a Cluster: its endpoints, protocol and TLS settings (by value); the same object also
  lets the IR sent to workers say "unchanged" cheaply (ir/delta.py).

Entries not used by a build are dropped at the next one, so the cache holds at most
two builds' worth. Without a cache ``ir.build`` computes the same IR from scratch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from turnout.graph.model import ResolvedRule
from turnout.ir import model as ir
from turnout.resources.meta import TopLevelObject

SortKey = tuple[object, ...]
KeyedRule = tuple[SortKey, ir.HTTPRouteRule]
RankOf = Callable[[str], tuple[int, int]]

K = TypeVar("K")
V = TypeVar("V")


class _Generations(Generic[K, V]):
    """A map whose entries live while the builds keep using them."""

    def __init__(self) -> None:
        self.previous: dict[K, V] = {}
        self.current: dict[K, V] = {}

    def begin(self) -> None:
        self.previous, self.current = self.current, {}

    def get(self, key: K) -> V | None:
        return self.previous.get(key)

    def put(self, key: K, value: V) -> V:
        self.current[key] = value
        return value


@dataclass(eq=False)
class RouteRules:
    """One route's IR rules with their precedence keys, and its hostname ranks."""

    obj: TopLevelObject
    resolved: list[ResolvedRule]
    keyed: list[KeyedRule]
    rank_of: RankOf  # hostname precedence under an effective hostname (reads obj only)
    ranks: dict[str, tuple[int, int]] = field(default_factory=dict)

    def rank(self, hostname: str) -> tuple[int, int]:
        found = self.ranks.get(hostname)
        if found is None:
            found = self.ranks[hostname] = self.rank_of(hostname)
        return found


@dataclass(eq=False)
class _Group:
    entries: tuple[RouteRules, ...]
    rules: tuple[ir.HTTPRouteRule, ...]


@dataclass(eq=False)
class _Cluster:
    inputs: tuple[object, ...]
    cluster: ir.Cluster


@dataclass(eq=False)
class _Host:
    parts: tuple[tuple[ir.HTTPRouteRule, ...], ...]
    vhost: ir.VirtualHost


class BuildCache:
    """Kept by the caller across ``ir.build`` calls (one cache per pipeline)."""

    def __init__(self) -> None:
        self._routes: _Generations[int, RouteRules] = _Generations()
        self._groups: _Generations[tuple[str, str], _Group] = _Generations()
        self._hosts: _Generations[tuple[str, str], _Host] = _Generations()
        self._clusters: _Generations[str, _Cluster] = _Generations()

    def begin(self) -> None:
        """Start a build: what the previous build used is what may be reused."""
        self._routes.begin()
        self._groups.begin()
        self._hosts.begin()
        self._clusters.begin()

    def cluster(
        self,
        name: str,
        inputs: tuple[object, ...],
        make: Callable[[], ir.Cluster],
    ) -> ir.Cluster:
        """``make()``, or the same Cluster as last time when ``inputs`` (everything
        ``make`` reads) are equal."""
        found = self._clusters.get(name)
        if found is None or found.inputs != inputs:
            found = _Cluster(inputs, make())
        return self._clusters.put(name, found).cluster

    def kept_rules(self, obj: TopLevelObject, resolved: list[ResolvedRule]) -> RouteRules | None:
        """The route's keyed rules of the last build, if they were compiled from this
        very ``obj`` and equal ``resolved`` rules; else None (then ``new_rules``)."""
        key = id(obj)
        found = self._routes.current.get(key)  # a route on several listeners
        if found is None:
            found = self._routes.get(key)
            if found is None or found.obj is not obj or found.resolved != resolved:
                return None
            self._routes.put(key, found)
        return found

    def new_rules(
        self,
        obj: TopLevelObject,
        resolved: list[ResolvedRule],
        keyed: list[KeyedRule],
        rank_of: RankOf,
    ) -> RouteRules:
        """Keep the route's rules as compiled now; ``keyed`` and ``rank_of`` may only
        depend on ``obj`` and ``resolved`` (that is what ``kept_rules`` checks)."""
        return self._routes.put(id(obj), RouteRules(obj, list(resolved), keyed, rank_of))

    def sorted_group(
        self,
        listener: str,
        hostname: str,
        entries: Sequence[RouteRules],
    ) -> tuple[ir.HTTPRouteRule, ...]:
        """The rules of ``entries`` under ``hostname``, in precedence order."""
        key = (listener, hostname)
        found = self._groups.get(key)
        if found is None or not _same(found.entries, entries):
            keyed: list[KeyedRule] = []
            for entry in entries:
                rank = entry.rank(hostname)
                keyed.extend(((*rank, *sort_key), rule) for sort_key, rule in entry.keyed)
            keyed.sort(key=lambda item: item[0])
            found = _Group(tuple(entries), tuple(rule for _, rule in keyed))
        return self._groups.put(key, found).rules

    def virtual_host(
        self, listener: str, hostname: str, parts: tuple[tuple[ir.HTTPRouteRule, ...], ...]
    ) -> ir.VirtualHost:
        """``VirtualHost(hostname, concatenation of parts)``, the same object as last
        time when the parts are."""
        key = (listener, hostname)
        found = self._hosts.get(key)
        if found is None or not _same(found.parts, parts):
            routes = parts[0] if len(parts) == 1 else tuple(r for part in parts for r in part)
            found = _Host(parts, ir.VirtualHost(hostname, routes))
        return self._hosts.put(key, found).vhost


def _same(old: Sequence[object], new: Sequence[object]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))
