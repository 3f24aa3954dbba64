"""GEP-1016 "Cross Serving": an HTTPRoute and a GRPCRoute must not share a hostname on
one listener.

Place in the pipeline: Snapshot -> **graph** -> (status, IR). ``reject_cross_kind``
decides it in a full build (graph/routes.py ``build_routes``), after attachment and
before attachedRoutes are counted; ``CrossServing.settle`` decides it again in a patch
(graph/incremental.py), only on the listeners the changed routes attach or attached to.

The rule (GRPCRoute.spec.hostnames): when the hostnames of routes of the two kinds
attached to a listener intersect, exactly one is accepted: the oldest, then the first
by "{namespace}/{name}". Routes claim listeners in that order; a route that meets an
older claim of the other kind loses that listener. Its parent is Accepted=False
(NotAllowedByListeners: the listener does not take it) when no listener is left, and
stays Accepted, saying which listeners it lost, otherwise.

So, per listener, a route's verdict depends only on the older routes of the other kind
that claim the listener there: a change re-decides the changed routes and, in age
order, the younger routes of the other kind whose rival may change (``settle``); a
route whose verdict stays the same changes nobody else's. Listeners are independent.
"""

from __future__ import annotations

import bisect
import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence

from turnout.graph import hostnames
from turnout.graph.model import CrossLoss, ListenerNode, ParentStatus, RouteNode
from turnout.status import conditions as c
from turnout.status.conditions import Condition

# The two kinds GEP-1016 forbids to share a hostname on a listener.
CROSS_SERVED = frozenset({"HTTPRoute", "GRPCRoute"})

Age = tuple[str, str, str, str]
Attached = list[tuple[ListenerNode, list[str]]]


def age(node: RouteNode) -> Age:
    """Precedence: older first, then by namespace/name (the kind breaks the last tie)."""
    # An unknown creationTimestamp sorts last, as in the IR's precedence order.
    return (node.obj.metadata.creation_timestamp or "~", node.namespace, node.name, node.kind)


def overlap(hosts: list[str], others: list[str]) -> bool:
    """Do two lists of effective hostnames (exact, wildcard or ANY) share a hostname?"""
    return any(
        hostnames.ANY in (a, b) or hostnames.matches(a, b) or hostnames.matches(b, a)
        for a in hosts
        for b in others
    )


def reject_cross_kind(nodes: Sequence[RouteNode]) -> None:
    """Take from each route the listeners it loses to an older route of the other kind
    (see the module docstring); before attachedRoutes are counted."""
    # Claims per listener and route kind, each with its claim order: a route is only
    # checked against the claims of other kinds (none at all on the usual listener that
    # carries one kind; scanning every claim made this quadratic in the routes).
    served = [n for n in nodes if n.kind in CROSS_SERVED]
    if len({n.kind for n in served}) < 2:
        return  # one kind only (the usual config): no route can lose to the other kind
    claimed: dict[int, dict[str, list[tuple[int, RouteNode, list[str]]]]] = defaultdict(dict)
    order = 0
    for node in sorted(served, key=age):
        for parent in node.parents:
            rivals: dict[int, RouteNode] = {}
            for listener, hosts in parent.listeners:
                found = (
                    next((claim for claim in claims if overlap(hosts, claim[2])), None)
                    for kind, claims in claimed[id(listener)].items()
                    if kind != node.kind
                )
                first = min((claim for claim in found if claim is not None), default=None)
                if first is not None:
                    rivals[id(listener)] = first[1]
            for listener, hosts in parent.listeners:
                if id(listener) not in rivals:
                    claimed[id(listener)].setdefault(node.kind, []).append((order, node, hosts))
                    order += 1
            if rivals:
                decide(parent, parent.listeners, parent.conditions, rivals)


def decide(
    parent: ParentStatus,
    offered: Attached,
    conditions: list[Condition],
    rivals: dict[int, RouteNode],
) -> None:
    """Set ``parent`` to what it is with ``offered`` listeners and ``conditions`` before
    the loss, when ``rivals`` (by listener id) took some of those listeners."""
    if not rivals:
        parent.listeners, parent.conditions, parent.cross_loss = offered, conditions, None
        return
    kept = [(listener, hosts) for listener, hosts in offered if id(listener) not in rivals]
    lost = [
        f"listener {listener.name}: shares a hostname with {rival.kind} "
        f"{rival.namespace}/{rival.name}, which takes precedence (older, or "
        "first by namespace/name), and an HTTPRoute and a GRPCRoute cannot "
        "share a hostname on one listener"
        for listener, _ in offered
        if (rival := rivals.get(id(listener))) is not None
    ]
    verdict = (
        c.route_accepted_except("; ".join(lost))
        if kept
        else c.route_not_allowed_by_listeners("; ".join(lost))
    )
    parent.cross_loss = CrossLoss(offered, conditions, rivals)
    parent.listeners = kept
    parent.conditions = [verdict if cond.type == c.ACCEPTED else cond for cond in conditions]


def route_order(entry: tuple[RouteNode, list[str]]) -> tuple[bool, tuple[str, str]]:
    """Where a route sits in ``ListenerNode.routes``: HTTPRoutes, then GRPCRoutes, each
    by key (the order ``build_routes`` counts them in)."""
    return (entry[0].kind != "HTTPRoute", entry[0].key)


def insert_route(listener: ListenerNode, entry: tuple[RouteNode, list[str]]) -> None:
    """Add a route to ``listener.routes`` where ``build_routes`` would have counted it."""
    index = bisect.bisect(listener.routes, route_order(entry), key=route_order)
    listener.routes.insert(index, entry)


def offered(parent: ParentStatus) -> Attached:
    """The listeners a parent attached to before any loss."""
    return parent.cross_loss.offered if parent.cross_loss is not None else parent.listeners


def _hosts_on(node: RouteNode, listener: ListenerNode) -> list[str]:
    for parent in node.parents:
        for candidate, hosts in offered(parent):
            if candidate is listener:
                return hosts
    raise LookupError(f"{node.kind} {node.namespace}/{node.name} is not on {listener.name}")


def _rival_on(node: RouteNode, listener: ListenerNode) -> RouteNode | None:
    for parent in node.parents:
        if parent.cross_loss is not None and id(listener) in parent.cross_loss.rivals:
            return parent.cross_loss.rivals[id(listener)]
    return None


class CrossServing:
    """The routes that lost a listener, per listener, kept across patches (in the
    patch's Basis) so that a patch finds them without looking at every route."""

    def __init__(self, nodes: Iterable[RouteNode]) -> None:
        # id(listener) -> id(route) -> the route that lost that listener.
        self.losers: dict[int, dict[int, RouteNode]] = defaultdict(dict)
        for node in nodes:
            for parent in node.parents:
                if parent.cross_loss is not None:
                    for listener_id in parent.cross_loss.rivals:
                        self.losers[listener_id][id(node)] = node

    def settle(self, removed: Iterable[RouteNode], added: Sequence[RouteNode]) -> None:
        """Decide the conflicts again after a patch replaced the ``removed`` route nodes
        (already detached from their listeners) by the ``added`` ones (attached, not yet
        counted on listeners). The routes whose verdict changed get their parents and
        listeners updated here; the ``added`` ones get their parents decided, and the
        caller counts them on the listeners they keep."""
        rounds: dict[int, _Round] = {}

        def round_of(listener: ListenerNode) -> _Round:
            found = rounds.get(id(listener))
            if found is None:
                found = rounds[id(listener)] = _Round(listener, self.losers[id(listener)])
            return found

        removed = [node for node in removed if node.kind in CROSS_SERVED]
        for node in removed:
            for parent in node.parents:
                if parent.cross_loss is not None:
                    for listener_id in parent.cross_loss.rivals:
                        self.losers[listener_id].pop(id(node), None)
        for node in removed:
            for parent in node.parents:
                for listener, _ in parent.listeners:  # claimed: its losers may win now
                    round_of(listener).freed(node)
        for node in added:
            if node.kind not in CROSS_SERVED:
                continue
            for parent in node.parents:
                for listener, hosts in parent.listeners:
                    round_of(listener).push(node, hosts)
        changed: dict[int, RouteNode] = {id(node): node for node in added}
        verdicts: dict[tuple[int, int], RouteNode | None] = {}
        for round_ in rounds.values():
            for node, rival in round_.run():
                verdicts[(id(round_.listener), id(node))] = rival
                changed[id(node)] = node
        fresh = {id(node) for node in added}
        for node in changed.values():
            self._apply(node, verdicts, is_new=id(node) in fresh)

    def _apply(
        self,
        node: RouteNode,
        verdicts: dict[tuple[int, int], RouteNode | None],
        *,
        is_new: bool,
    ) -> None:
        """Decide ``node``'s parents from its verdicts (the new ones, else as before),
        and move it on the listeners whose verdict flipped (not for a new node)."""
        # Every listener's rival before (the same on every parent), then the verdicts.
        old = {
            id(listener): None if is_new else _rival_on(node, listener)
            for parent in node.parents
            for listener, _ in offered(parent)
        }
        before = {listener_id: rival is None for listener_id, rival in old.items()}
        for parent in node.parents:
            base = parent.cross_loss.conditions if parent.cross_loss else parent.conditions
            rivals: dict[int, RouteNode] = {}
            for listener, _ in offered(parent):
                key = (id(listener), id(node))
                rival = verdicts[key] if key in verdicts else old[id(listener)]
                if rival is not None:
                    rivals[id(listener)] = rival
            decide(parent, offered(parent), base, rivals)
        now: dict[int, tuple[ListenerNode, list[str]]] = {}
        for parent in node.parents:
            for listener, hosts in parent.listeners:
                now.setdefault(id(listener), (listener, hosts))
        for parent in node.parents:
            for listener, _ in offered(parent):
                lost = id(listener) not in now
                if lost:
                    self.losers[id(listener)][id(node)] = node
                else:
                    self.losers[id(listener)].pop(id(node), None)
                if is_new or before[id(listener)] == (not lost):
                    continue
                before[id(listener)] = not lost  # once per listener
                if lost:
                    listener.attached_routes -= 1
                    listener.routes = [e for e in listener.routes if e[0] is not node]
                else:
                    listener.attached_routes += 1
                    insert_route(listener, (node, now[id(listener)][1]))


class _Round:
    """One listener's verdicts decided again, in age order (see the module docstring)."""

    def __init__(self, listener: ListenerNode, losers: dict[int, RouteNode]) -> None:
        self.listener = listener
        self.losers = losers  # as before this patch; read only here
        # The routes claiming the listener, per kind: as before this patch (the removed
        # ones already detached), then as decided so far.
        self.claims: dict[str, dict[int, tuple[RouteNode, list[str]]]] = {
            kind: {} for kind in CROSS_SERVED
        }
        for node, hosts in listener.routes:
            if node.kind in CROSS_SERVED:
                self.claims[node.kind][id(node)] = (node, hosts)
        self._queue: list[tuple[Age, int, RouteNode, list[str]]] = []
        self._queued: set[int] = set()
        self._new: set[int] = set()

    def push(self, node: RouteNode, hosts: list[str], *, is_new: bool = True) -> None:
        if id(node) not in self._queued:
            self._queued.add(id(node))
            if is_new:
                self._new.add(id(node))
            heapq.heappush(self._queue, (age(node), id(node), node, hosts))

    def freed(self, node: RouteNode) -> None:
        """``node`` no longer claims the listener: who lost to it is decided again."""
        for loser in self.losers.values():
            if _rival_on(loser, self.listener) is node:
                self.push(loser, _hosts_on(loser, self.listener), is_new=False)

    def run(self) -> list[tuple[RouteNode, RouteNode | None]]:
        """(route, its rival or None: it claims the listener) for every route decided."""
        decided: list[tuple[RouteNode, RouteNode | None]] = []
        while self._queue:
            when, node_id, node, hosts = heapq.heappop(self._queue)
            other = "GRPCRoute" if node.kind == "HTTPRoute" else "HTTPRoute"
            rival = min(
                (
                    claim
                    for claim, claim_hosts in self.claims[other].values()
                    if age(claim) < when and overlap(hosts, claim_hosts)
                ),
                key=age,
                default=None,
            )
            is_new = node_id in self._new
            was_claiming = not is_new and node_id not in self.losers
            decided.append((node, rival))
            if rival is None:
                self.claims[node.kind][node_id] = (node, hosts)
                if not was_claiming:
                    self._claimed(node, when, hosts, other)
            else:
                self.claims[node.kind].pop(node_id, None)
                if was_claiming:
                    self.freed(node)
        return decided

    def _claimed(self, node: RouteNode, when: Age, hosts: list[str], other: str) -> None:
        """``node`` claims the listener now: younger routes of the other kind sharing a
        hostname may lose to it (if they claim) or lose to it first (if they lost to a
        younger route)."""
        for claim, claim_hosts in list(self.claims[other].values()):
            if age(claim) > when and overlap(hosts, claim_hosts):
                self.push(claim, claim_hosts, is_new=False)
        for loser in self.losers.values():
            if loser.kind != other or age(loser) <= when:
                continue
            rival = _rival_on(loser, self.listener)
            if rival is not None and age(rival) > when:
                hosts_there = _hosts_on(loser, self.listener)
                if overlap(hosts, hosts_there):
                    self.push(loser, hosts_there, is_new=False)
