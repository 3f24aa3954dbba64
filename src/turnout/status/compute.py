"""Status as a controller would write it: the graph's verdicts plus data-plane feedback.

`compute` returns Kubernetes-shaped objects (apiVersion, kind, metadata, spec, status)
for every GatewayClass, Gateway, route (HTTP, gRPC, TCP, TLS, UDP) and BackendTLSPolicy in
the Snapshot. Objects that are not ours keep the status they came with; on routes
(parents) and policies (ancestors), entries written by other controllers are kept and
only ours are replaced.

Times: `lastTransitionTime` is kept from the previous status when a condition's
status did not change (the `StatusClock` remembers), so repeated rebuilds do not
churn the status, as Kubernetes' meta.SetStatusCondition would behave.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from turnout.graph.backendtls import BackendTLSPolicyNode
from turnout.graph.model import (
    GatewayNode,
    Graph,
    L4RouteNode,
    ListenerNode,
    ListenerSetNode,
    ParentStatus,
    RouteNode,
)
from turnout.resources.meta import GATEWAY_GROUP, ParentReference, TopLevelObject
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c
from turnout.status.conditions import Condition


@dataclass(frozen=True)
class DataPlaneFeedback:
    """What the data plane said about the last IR it was given."""

    applied: bool = True  # False until the first IR has been applied
    listener_errors: Mapping[str, str] = field(default_factory=dict)  # ir listener name


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Per object: (rest of the condition's path, condition type) -> (status, lastTransitionTime).
_Times = dict[tuple[str, ...], tuple[str, str]]


class StatusClock:
    """Stamps lastTransitionTime, keeping it while a condition's status is unchanged.

    What it remembers is grouped by object (the path's kind, namespace and name) and
    lives from one `compute` to the next (`begin`): an object whose conditions a compute
    stamps, or whose unchanged status it reuses (`keep`), carries its times over; the
    times of an object it no longer writes -- deleted, or no longer ours -- and of a
    condition an object no longer has (a removed listener, parentRef) are forgotten.
    Kept forever, they grew with every route ever created (tests/test_leaks_control_plane.py),
    and a route recreated under an old name would have inherited its predecessor's times.
    """

    def __init__(self, now: Callable[[], str] = _now) -> None:
        self._now = now
        self._previous: dict[tuple[str, ...], _Times] = {}
        self._current: dict[tuple[str, ...], _Times] = {}

    def begin(self) -> None:
        """A compute starts: what the last one stamped or kept can be carried over."""
        self._previous, self._current = self._current, {}

    def keep(self, owner: tuple[str, ...]) -> None:
        """``owner``'s status is reused as it is: its times stay remembered."""
        times = self._previous.get(owner)
        if times is not None and owner not in self._current:
            self._current[owner] = times

    def stamp(self, path: tuple[str, ...], cond: Condition, generation: int) -> dict[str, Any]:
        split = 2 if path[0] == "GatewayClass" else 3  # cluster-scoped: no namespace
        owner = path[:split]
        key = (*path[split:], cond.type)
        times = self._current.get(owner)
        if times is None:
            times = self._current[owner] = {}
        previous = times.get(key)
        if previous is None and (earlier := self._previous.get(owner)) is not None:
            previous = earlier.get(key)
        when = previous[1] if previous is not None and previous[0] == cond.status else self._now()
        times[key] = (cond.status, when)
        return {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message,
            "observedGeneration": generation,
            "lastTransitionTime": when,
        }


def compute(
    snapshot: Snapshot,
    graph: Graph,
    feedback: DataPlaneFeedback,
    clock: StatusClock,
    supported_features: list[str],
    input_status: Mapping[tuple[str, str, str], Mapping[str, Any]] | None = None,
    cache: RouteStatusCache | None = None,
) -> list[dict[str, Any]]:
    """Every GatewayClass, Gateway, route (HTTP, gRPC, TCP, TLS, UDP) and BackendTLSPolicy,
    with status.

    `input_status` is the status each object came with, by (kind, namespace, name)
    (namespace "" for cluster-scoped kinds): kept for objects that are not ours and for
    route parent entries of other controllers. `cache` (kept across calls with the same
    `clock`) lets unchanged routes reuse their items; the result is the same without it.
    """
    given = input_status or {}
    route_cache = cache if cache is not None else RouteStatusCache()
    route_cache.begin()
    clock.begin()

    def _object(obj: TopLevelObject) -> dict[str, Any]:
        kind = type(obj).__name__  # the model classes are named after their kinds
        return _as_written(obj, given.get((kind, *obj.key)))

    items: list[dict[str, Any]] = []
    for name, gateway_class in sorted(snapshot.gateway_classes.items()):
        item = _object(gateway_class)
        node = graph.gateway_classes.get(name)
        if node is not None:
            item["status"] = {
                "conditions": _conditions(
                    clock, ("GatewayClass", name), node.conditions, gateway_class
                )
            }
            if node.accepted:
                # A class turnout refuses provisions nothing, so it supports nothing.
                item["status"]["supportedFeatures"] = [
                    {"name": f} for f in sorted(supported_features)
                ]
        items.append(item)
    for key, gateway in sorted(snapshot.gateways.items()):
        item = _object(gateway)
        gateway_node = graph.gateways.get(key)
        if gateway_node is not None:
            item["status"] = _gateway_status(gateway_node, feedback, clock)
        items.append(item)
    for key, listener_set in sorted(snapshot.listener_sets.items()):
        item = _object(listener_set)
        listener_set_node = graph.listener_sets.get(key)
        if listener_set_node is not None:
            item["status"] = _listener_set_status(listener_set_node, feedback, clock)
        items.append(item)
    for routes, nodes in (
        (snapshot.http_routes, graph.routes),
        (snapshot.grpc_routes, graph.grpc_routes),
    ):
        for key, route in sorted(routes.items()):
            route_node = nodes.get(key)
            parents = route_node.parents if route_node is not None else []
            status_given = given.get((type(route).__name__, *key))
            reused = route_cache.reuse(route, status_given, parents)
            if reused is not None:
                clock.keep(_route_owner(route))
            else:
                reused = _object(route)
                if route_node is not None and parents:
                    reused["status"] = _route_status(
                        graph.controller_name, reused, route_node, clock
                    )
                route_cache.store(route, status_given, parents, reused)
            items.append(reused)
    for key, policy in sorted(snapshot.backend_tls_policies.items()):
        item = _object(policy)
        policy_node = graph.backend_tls_policies.get(key)
        if policy_node is not None and policy_node.ancestors:
            item["status"] = _policy_status(
                graph.controller_name, policy_node, item.get("status"), clock
            )
        items.append(item)
    items.extend(_l4_route_items(snapshot, graph, clock, given))
    return items


def _l4_route_items(
    snapshot: Snapshot,
    graph: Graph,
    clock: StatusClock,
    given: Mapping[tuple[str, str, str], Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """TCPRoutes, TLSRoutes and UDPRoutes, with status written like HTTPRoutes'."""
    items: list[dict[str, Any]] = []
    for routes in (snapshot.tcp_routes, snapshot.tls_routes, snapshot.udp_routes):
        for key, route in sorted(routes.items()):
            kind = type(route).__name__
            item = _as_written(route, given.get((kind, *key)))
            node = graph.l4_routes.get((kind, *key))
            if node is not None and node.parents:
                item["status"] = _route_status(graph.controller_name, item, node, clock)
            items.append(item)
    return items


def _route_status(
    controller_name: str,
    item: Mapping[str, Any],
    node: RouteNode | L4RouteNode,
    clock: StatusClock,
) -> dict[str, Any]:
    """status.parents: other controllers' entries as they were, then ours."""
    others = [
        p
        for p in (item.get("status") or {}).get("parents", [])
        if p.get("controllerName") != controller_name
    ]
    ours = [
        _parent_status(controller_name, parent, node.obj, clock, i)
        for i, parent in enumerate(node.parents)
    ]
    return {"parents": others + ours}


def _policy_status(
    controller_name: str,
    node: BackendTLSPolicyNode,
    given: Mapping[str, Any] | None,
    clock: StatusClock,
) -> dict[str, Any]:
    """PolicyStatus: our ancestor entries (one per Gateway) after other controllers'."""
    others = [
        a for a in (given or {}).get("ancestors", []) if a.get("controllerName") != controller_name
    ]
    ours = []
    for gateway in node.ancestors:
        path = ("BackendTLSPolicy", node.obj.namespace, node.obj.name, *gateway.key)
        ours.append(
            {
                "ancestorRef": {
                    "group": GATEWAY_GROUP,
                    "kind": "Gateway",
                    "namespace": gateway.namespace,
                    "name": gateway.name,
                },
                "controllerName": controller_name,
                "conditions": _conditions(
                    clock, path, [node.accepted, node.resolved_refs], node.obj
                ),
            }
        )
    # PolicyStatus.Ancestors holds at most 16 entries; ours are kept first.
    return {"ancestors": (ours + others)[:16]}


class RouteStatusCache:
    """Route status items of the previous `compute`, reused while nothing in them changed.

    A route's item is a function of the route object, the status it was written with,
    and the conditions of our parentRefs (lastTransitionTime only moves when a
    condition's status does). The file source hands out the very same frozen route
    object and status dict while a file is unchanged, so those two are compared by
    identity (held here, so an id is never recycled) and the conditions by value. At
    thousands of routes this spares re-dumping every unchanged route on each reload.
    """

    def __init__(self) -> None:
        self._previous: dict[int, _CachedItem] = {}
        self._current: dict[int, _CachedItem] = {}

    def begin(self) -> None:
        """Start a compute: what the last one stored is what can be reused."""
        self._previous, self._current = self._current, {}

    def reuse(
        self, route: TopLevelObject, given: Mapping[str, Any] | None, parents: list[ParentStatus]
    ) -> dict[str, Any] | None:
        """The item computed last time, if nothing it is made of changed; else None."""
        cached = self._previous.get(id(route))
        if (
            cached is None
            or cached.route is not route
            or cached.given is not given
            or cached.conditions != _conditions_of(parents)
        ):
            return None
        self._current[id(route)] = cached
        return cached.item

    def store(
        self,
        route: TopLevelObject,
        given: Mapping[str, Any] | None,
        parents: list[ParentStatus],
        item: dict[str, Any],
    ) -> None:
        self._current[id(route)] = _CachedItem(route, given, _conditions_of(parents), item)


def _conditions_of(parents: list[ParentStatus]) -> tuple[tuple[Condition, ...], ...]:
    return tuple(tuple(parent.conditions) for parent in parents)


@dataclass(frozen=True, slots=True)
class _CachedItem:
    route: TopLevelObject  # keeps id(route) from being reused while cached
    given: Mapping[str, Any] | None
    conditions: tuple[tuple[Condition, ...], ...]
    item: dict[str, Any]


def _as_written(obj: TopLevelObject, status: Mapping[str, Any] | None) -> dict[str, Any]:
    """The object as the API server would return it, with the status it was given."""
    dumped: dict[str, Any] = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    metadata = dumped.get("metadata", {})
    if not obj.cluster_scoped:
        metadata["namespace"] = obj.namespace
    for empty in ("labels", "annotations"):
        if not metadata.get(empty):
            metadata.pop(empty, None)
    if status:
        dumped["status"] = dict(status)
    return dumped


def _conditions(
    clock: StatusClock, path: tuple[str, ...], conds: list[Condition], obj: TopLevelObject
) -> list[dict[str, Any]]:
    generation = obj.metadata.generation or 1
    return [clock.stamp(path, cond, generation) for cond in conds]


def _gateway_status(
    node: GatewayNode, feedback: DataPlaneFeedback, clock: StatusClock
) -> dict[str, Any]:
    obj = node.obj
    base = ("Gateway", node.namespace, node.name)
    listeners, programmed_listeners = _listener_statuses(node.listeners, feedback, clock, base, obj)
    conds = [*node.conditions, _gateway_programmed(node, feedback, programmed_listeners)]
    status: dict[str, Any] = {}
    if node.address is not None and node.accepted:
        status["addresses"] = [{"type": "IPAddress", "value": node.address}]
    status["conditions"] = _conditions(clock, base, conds, obj)
    status["listeners"] = listeners
    if node.listener_sets:
        status["attachedListenerSets"] = node.attached_listener_sets
    return status


def _listener_set_status(
    node: ListenerSetNode, feedback: DataPlaneFeedback, clock: StatusClock
) -> dict[str, Any]:
    base = ("ListenerSet", node.namespace, node.name)
    listeners, programmed_listeners = _listener_statuses(
        node.listeners, feedback, clock, base, node.obj
    )
    conds = [*node.conditions, _listener_set_programmed(node, feedback, programmed_listeners)]
    status: dict[str, Any] = {"conditions": _conditions(clock, base, conds, node.obj)}
    if listeners:
        status["listeners"] = listeners
    return status


def _listener_statuses(
    nodes: list[ListenerNode],
    feedback: DataPlaneFeedback,
    clock: StatusClock,
    base: tuple[str, ...],
    obj: TopLevelObject,
) -> tuple[list[dict[str, Any]], int]:
    """``status.listeners`` of a Gateway or ListenerSet, and how many are Programmed."""
    listeners = []
    programmed_listeners = 0
    for listener in nodes:
        conds = list(listener.conditions)
        programmed = _listener_programmed(listener, feedback)
        if programmed.status == "True":
            programmed_listeners += 1
        error = feedback.listener_errors.get(listener.ir_name)
        if error is not None:
            conds = [
                c.listener_port_unavailable(f"cannot listen on port {listener.spec.port}: {error}")
                if cond.type == c.ACCEPTED
                else cond
                for cond in conds
            ]
        conds.append(programmed)
        listeners.append(
            {
                "name": listener.name,
                "supportedKinds": [{"group": g, "kind": k} for g, k in listener.supported_kinds],
                "attachedRoutes": listener.attached_routes,
                "conditions": _conditions(clock, (*base, "listener", listener.name), conds, obj),
            }
        )
    return listeners, programmed_listeners


def _listener_set_programmed(
    node: ListenerSetNode, feedback: DataPlaneFeedback, programmed_listeners: int
) -> Condition:
    if node.not_programmed is not None:
        return c.listener_set_not_programmed(*node.not_programmed)
    if not feedback.applied:
        return c.listener_set_programmed_pending()
    if programmed_listeners == 0:
        return c.listener_set_not_programmed(
            c.LISTENER_SET_PROGRAMMED_PARENT_NOT_PROGRAMMED
            if node.gateway.address is None
            else c.LISTENER_SET_PROGRAMMED_LISTENERS_NOT_VALID,
            "no listener could be programmed",
        )
    return c.listener_set_programmed()


def _listener_programmed(listener: ListenerNode, feedback: DataPlaneFeedback) -> Condition:
    if not listener.gateway.accepted:
        return c.listener_not_programmed_invalid("the Gateway is not accepted")
    if listener.accepted and listener.not_programmable is not None:
        return c.listener_not_programmed_invalid(listener.not_programmable)
    conflicted = next(
        (
            cond
            for cond in listener.conditions
            if cond.type == c.CONFLICTED and cond.status == "True"
        ),
        None,
    )
    if conflicted is not None:
        return c.listener_not_programmed_conflicted(conflicted.reason, conflicted.message)
    if not listener.servable:
        return c.listener_not_programmed_invalid("the listener is not accepted")
    if listener.gateway.address is None:
        return c.listener_not_programmed_invalid("the Gateway has no address")
    if not feedback.applied:
        return c.listener_programmed_pending()
    error = feedback.listener_errors.get(listener.ir_name)
    if error is not None:
        return c.listener_not_programmed_invalid(
            f"cannot listen on {listener.gateway.address}:{listener.spec.port}: {error}"
        )
    return c.listener_programmed()


def _gateway_programmed(
    node: GatewayNode, feedback: DataPlaneFeedback, programmed_listeners: int
) -> Condition:
    if not node.accepted:
        return c.gateway_not_programmed_invalid("the Gateway is not accepted")
    if node.address_condition is not None:
        return node.address_condition
    if node.address is None:
        return c.gateway_address_not_assigned("the address pool has no free address left")
    if not feedback.applied:
        return c.gateway_programmed_pending()
    if programmed_listeners == 0:
        return c.gateway_not_programmed_invalid("no listener could be programmed")
    return c.gateway_programmed()


def _parent_status(
    controller_name: str,
    parent: ParentStatus,
    route: TopLevelObject,
    clock: StatusClock,
    index: int,
) -> dict[str, Any]:
    path = (*_route_owner(route), str(index))
    return {
        "parentRef": _parent_ref(parent.ref),
        "controllerName": controller_name,
        "conditions": _conditions(clock, path, parent.conditions, route),
    }


def _route_owner(route: TopLevelObject) -> tuple[str, str, str]:
    """How the StatusClock knows a route: kind, namespace, name."""
    kind = type(route).__name__  # the model classes are named after their kinds
    return (kind, route.metadata.namespace or "default", route.metadata.name)


def _parent_ref(ref: ParentReference) -> dict[str, Any]:
    """The parentRef as stored by the API server (group and kind defaulted)."""
    out: dict[str, Any] = {"group": ref.group, "kind": ref.kind}
    if ref.namespace is not None:
        out["namespace"] = ref.namespace
    out["name"] = ref.name
    if ref.section_name is not None:
        out["sectionName"] = ref.section_name
    if ref.port is not None:
        out["port"] = ref.port
    return out
