"""Route attachment shared by every route kind: parents, listeners, verdicts.

Part of the graph (Snapshot -> **graph** -> status, IR); used by ``graph.routes``
(HTTPRoute, GRPCRoute) and ``graph.l4routes`` (TCPRoute, TLSRoute, UDPRoute), so that
one rule is written once and every kind reports it alike.

Attachment follows GEP-957 and ParentReference: a parentRef names a Gateway or a
ListenerSet (GEP-1713; a Gateway parentRef never covers a ListenerSet's listeners),
selects listeners by ``sectionName`` and ``port`` (none left: NoMatchingParent), keeps
those whose allowedRoutes admit the route's kind and namespace (none:
NotAllowedByListeners) and whose hostnames intersect the route's (none:
NoMatchingListenerHostname).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from turnout.graph.gateways import GATEWAY_GROUP
from turnout.graph.model import (
    GatewayNode,
    Key,
    L4Route,
    L4RouteNode,
    ListenerNode,
    ListenerSetNode,
    ParentStatus,
    Route,
    RouteNode,
)
from turnout.resources.meta import ParentReference
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c
from turnout.status.conditions import Condition

Parent = GatewayNode | ListenerSetNode

# ResolvedRefs=False carries one reason: the most telling of the backendRefs' problems.
_RESOLVED_REFS_PRIORITY = (
    c.ROUTE_RESOLVED_REFS_REF_NOT_PERMITTED,
    c.ROUTE_RESOLVED_REFS_INVALID_KIND,
    c.ROUTE_RESOLVED_REFS_BACKEND_NOT_FOUND,
    c.ROUTE_RESOLVED_REFS_UNSUPPORTED_PROTOCOL,
)


def resolved_refs_condition(unresolved: list[Condition]) -> Condition:
    """The route's ResolvedRefs from the problems of its backendRefs (none: True)."""
    if not unresolved:
        return c.route_resolved_refs()
    reasons = {cond.reason for cond in unresolved}
    reason = next((r for r in _RESOLVED_REFS_PRIORITY if r in reasons), unresolved[0].reason)
    return c.route_unresolved_refs(reason, "; ".join(cond.message for cond in unresolved))


def find_parent(
    parent_ref: ParentReference,
    route_namespace: str,
    gateways: Mapping[Key, GatewayNode],
    listener_sets: Mapping[Key, ListenerSetNode],
) -> Parent | None:
    """The Gateway or ListenerSet of ours that ``parent_ref`` names, if any."""
    if parent_ref.group != GATEWAY_GROUP:
        return None  # Services (mesh) and other parent kinds are not served yet
    key = (parent_ref.namespace or route_namespace, parent_ref.name)
    if parent_ref.kind == "Gateway":
        return gateways.get(key)
    if parent_ref.kind == "ListenerSet":
        return listener_sets.get(key)
    return None


# What ``attach`` decided for a parentRef, by everything it reads (see attach_parents):
# one pass over the routes of a build shares it between the routes it decides alike. It
# names parent nodes by id, so it must not outlive the pass.
Verdicts = dict[tuple[object, ...], ParentStatus]


def attach_parents(
    node: RouteNode | L4RouteNode,
    snapshot: Snapshot,
    gateways: Mapping[Key, GatewayNode],
    listener_sets: Mapping[Key, ListenerSetNode],
    *,
    hostnames_on: Callable[[ListenerNode], list[str]],
    route_hostnames: Sequence[str],
    verdicts: Verdicts | None = None,
) -> None:
    """Append to ``node.parents`` the status entry of each parentRef naming a parent of
    ours (see :func:`attach`); parentRefs to other parents are left alone.

    ``verdicts``: kept through one pass over many routes. Routes of one kind, namespace
    and hostnames (``hostnames_on`` must read only those of the route) get the same
    verdict from a parentRef selecting the same listeners of the same parent, the
    conditions of their own rules (``common_conditions``) aside; at thousands of routes
    most share one with another route (about ten per hostname in bench/manifests.py).
    """
    route = node.obj
    namespace = route.namespace
    if verdicts is None:
        verdicts = {}  # this route's parentRefs only
    for parent_ref in route.spec.parent_refs:
        parent = find_parent(parent_ref, namespace, gateways, listener_sets)
        if parent is None:
            continue
        # attach reads of the parentRef only what selects listeners (its name and kind
        # are the parent's), and of the route its kind, namespace, hostnames, invalid.
        key = (
            id(parent),
            parent_ref.section_name,
            parent_ref.port,
            route.kind,
            namespace,
            tuple(route_hostnames),
            node.invalid,
        )
        shared = verdicts.get(key)
        if shared is None:
            shared = verdicts[key] = attach(
                route,
                parent_ref,
                parent,
                snapshot,
                hostnames_on=hostnames_on,
                route_hostnames=route_hostnames,
                invalid=node.invalid,
            )
        # The verdict is shared; the route's own conditions (its rules') follow it.
        node.parents.append(
            ParentStatus(
                parent_ref,
                shared.gateway,
                [*shared.conditions, *node.common_conditions],
                listener_set=shared.listener_set,
                listeners=list(shared.listeners),
            )
        )


def attach(
    route: Route | L4Route,
    parent_ref: ParentReference,
    parent: Parent,
    snapshot: Snapshot,
    *,
    hostnames_on: Callable[[ListenerNode], list[str]],
    route_hostnames: Sequence[str],
    invalid: Condition | None,
) -> ParentStatus:
    """The route's status entry for one parentRef, and the listeners it attaches to.

    ``hostnames_on(listener)`` gives the hostnames the route serves there ([]: none);
    ``invalid`` is set when no rule of the route is valid.
    """
    if isinstance(parent, ListenerSetNode):
        gateway = parent.gateway
        status = ParentStatus(parent_ref, gateway, [], listener_set=parent)
    else:
        gateway = parent
        status = ParentStatus(parent_ref, gateway, [])
    candidates = parent.listeners
    if parent_ref.section_name is not None:
        candidates = [ln for ln in candidates if ln.name == parent_ref.section_name]
    if parent_ref.port is not None:
        candidates = [ln for ln in candidates if ln.spec.port == parent_ref.port]
    allowed = [ln for ln in candidates if _allows(ln, route, snapshot)]
    attached = [(ln, hosts) for ln in allowed if (hosts := hostnames_on(ln))]
    if isinstance(parent, ListenerSetNode) and not parent.accepted:
        status.conditions.append(
            c.route_no_matching_parent(
                f"ListenerSet {parent.namespace}/{parent.name} is not attached to Gateway "
                f"{gateway.namespace}/{gateway.name} (see its Accepted condition)"
            )
        )
    elif not candidates:
        status.conditions.append(
            c.route_no_matching_parent(_no_parent_message(parent_ref, parent.obj.kind))
        )
    elif not allowed:
        status.conditions.append(_not_allowed(route, parent_ref, parent, candidates))
    elif not attached:
        status.conditions.append(
            c.route_no_matching_listener_hostname(
                f"none of the route's hostnames ({', '.join(route_hostnames)}) "
                "matches a listener hostname"
            )
        )
    elif not gateway.accepted:
        # A Gateway that is not Accepted is "not valid enough to produce configuration"
        # (GatewayConditionAccepted), so nothing of the route is served through it:
        # report that rather than Accepted=True. The spec lists no reason for this
        # case; NoMatchingParent ("no matching Parents") is the closest it names.
        status.conditions.append(
            c.route_no_matching_parent(
                f"Gateway {gateway.namespace}/{gateway.name} is not accepted "
                f"({_gateway_reason(gateway)}): it serves no routes"
            )
        )
        # Still counted in attachedRoutes: attachment rests "solely on" allowedRoutes
        # and parentRefs (ListenerStatus.AttachedRoutes); nothing is programmed.
        status.listeners = attached
    elif invalid is not None:
        status.conditions.append(invalid)
    else:
        status.conditions.append(c.route_accepted())
        status.listeners = attached
    return status


def _not_allowed(
    route: Route | L4Route,
    parent_ref: ParentReference,
    parent: Parent,
    candidates: list[ListenerNode],
) -> Condition:
    kind = route.kind
    if any((GATEWAY_GROUP, kind) in ln.supported_kinds for ln in candidates):
        why = f"allows {kind}s from namespace {route.namespace}"
    else:
        protocols = ", ".join(sorted({ln.spec.protocol for ln in candidates}))
        why = f"supports the {kind} kind (listener protocols: {protocols})"
    return c.route_not_allowed_by_listeners(
        f"no listener of {parent.obj.kind} {parent.namespace}/{parent.name} "
        f"{_selected(parent_ref)}{why}"
    )


def _gateway_reason(gateway: GatewayNode) -> str:
    return next((cond.reason for cond in gateway.conditions if cond.type == c.ACCEPTED), "?")


def _selected(parent_ref: ParentReference) -> str:
    if parent_ref.section_name is not None:
        return f"(listener {parent_ref.section_name}) "
    if parent_ref.port is not None:
        return f"(port {parent_ref.port}) "
    return ""


def _no_parent_message(parent_ref: ParentReference, kind: str) -> str:
    wanted = []
    if parent_ref.section_name is not None:
        wanted.append(f"named {parent_ref.section_name}")
    if parent_ref.port is not None:
        wanted.append(f"on port {parent_ref.port}")
    return f"{kind} {parent_ref.name} has no listener {' and '.join(wanted)}"


def _allows(listener: ListenerNode, route: Route | L4Route, snapshot: Snapshot) -> bool:
    if (GATEWAY_GROUP, route.kind) not in listener.supported_kinds:
        return False
    namespaces = listener.spec.allowed_routes.namespaces
    if namespaces.from_ == "All":
        return True
    if namespaces.from_ == "Same":
        return route.namespace == listener.namespace  # the ListenerSet's, for its listeners
    selector = namespaces.selector
    if selector is None:
        return False
    return selector.matches(snapshot.namespace_labels(route.namespace))
