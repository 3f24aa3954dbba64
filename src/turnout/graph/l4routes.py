"""TCPRoutes, TLSRoutes and UDPRoutes: backend resolution and attachment to listeners.

Part of the graph (Snapshot -> **graph** -> status, IR). These kinds have no matches:
a route forwards every stream (TCP), every TLS stream whose SNI it names (TLS) or every
datagram (UDP) of the listeners it attaches to, to one rule of weighted backendRefs.

Attachment follows the same rules as HTTPRoute (GEP-957; parents are Gateways or
ListenerSets, GEP-1713, whose listeners a Gateway parentRef never covers): ``sectionName``/``port``
select listeners (none: NoMatchingParent); of those, listeners whose supportedKinds
hold the route's kind and whose allowedRoutes admit its namespace (none:
NotAllowedByListeners, which conformance expects for a TCPRoute on a non-TCP listener
or a TLSRoute on an HTTP listener); for TLSRoute, the hostnames must intersect the
listener's (none: NoMatchingListenerHostname), as for HTTPRoute.

Several routes on one listener are all Accepted and counted in attachedRoutes, but only
the oldest receives traffic (for TLSRoute: per SNI hostname), then ``{namespace}/{name}``
(API design guide, "Conflicts"; conformance TCPRouteMultipleRoutesAttachment). The IR
builder applies that order; ``L4RouteNode.age_key`` is the key.
"""

from __future__ import annotations

from collections.abc import Mapping

from turnout.graph import hostnames
from turnout.graph.backends import BackendResolver, BackendTarget
from turnout.graph.gateways import GATEWAY_GROUP
from turnout.graph.model import (
    GatewayNode,
    Key,
    L4Route,
    L4RouteNode,
    ListenerNode,
    ListenerSetNode,
    ParentStatus,
    ResolvedBackend,
)
from turnout.resources import TLSRoute
from turnout.resources.meta import ParentReference
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c
from turnout.status.conditions import Condition

L4Key = tuple[str, str, str]  # (kind, namespace, name)

_RESOLVED_REFS_PRIORITY = (
    c.ROUTE_RESOLVED_REFS_REF_NOT_PERMITTED,
    c.ROUTE_RESOLVED_REFS_INVALID_KIND,
    c.ROUTE_RESOLVED_REFS_BACKEND_NOT_FOUND,
    c.ROUTE_RESOLVED_REFS_UNSUPPORTED_PROTOCOL,
)


def build_l4_routes(
    snapshot: Snapshot,
    gateways: Mapping[Key, GatewayNode],
    listener_sets: Mapping[Key, ListenerSetNode],
    resolver: BackendResolver,
) -> dict[L4Key, L4RouteNode]:
    nodes: dict[L4Key, L4RouteNode] = {}
    kinds: list[tuple[str, Mapping[Key, L4Route]]] = [
        ("TCPRoute", snapshot.tcp_routes),
        ("TLSRoute", snapshot.tls_routes),
        ("UDPRoute", snapshot.udp_routes),
    ]
    for kind, routes in kinds:
        for key, route in sorted(routes.items()):
            node = L4RouteNode(route)
            _resolve_backends(node, resolver)
            for parent_ref in route.spec.parent_refs:
                if parent_ref.group != GATEWAY_GROUP:
                    continue  # Services (mesh) and other parent kinds are not served
                parent_key = (parent_ref.namespace or route.namespace, parent_ref.name)
                parent: GatewayNode | ListenerSetNode | None = None
                if parent_ref.kind == "Gateway":
                    parent = gateways.get(parent_key)
                elif parent_ref.kind == "ListenerSet":
                    parent = listener_sets.get(parent_key)
                if parent is not None:
                    node.parents.append(_attach(node, parent_ref, parent, snapshot))
            nodes[(kind, *key)] = node
    _count_attached(nodes)
    return nodes


def _resolve_backends(node: L4RouteNode, resolver: BackendResolver) -> None:
    route = node.obj
    unresolved: list[Condition] = []
    for i, rule in enumerate(route.spec.rules):
        resolved = []
        for j, ref in enumerate(rule.backend_refs):
            cluster, error = resolver.resolve(
                BackendTarget(
                    ref.group, ref.kind, ref.namespace or route.namespace, ref.name, ref.port
                ),
                field=f"spec.rules[{i}].backendRefs[{j}]",
                from_kind=route.kind,
                from_namespace=route.namespace,
                check_app_protocol=False,
            )
            resolved.append(ResolvedBackend(ref.weight, cluster, error))
            if error is not None:
                unresolved.append(error)
        if i == 0:
            node.backends = resolved
    if len(route.spec.rules) > 1:
        # Only v1alpha2 allows several rules; with nothing to match on, which rule a
        # stream should take is not defined, so turnout does not guess.
        node.invalid = c.route_unsupported_value(
            f"spec.rules: {len(route.spec.rules)} rules given; turnout serves one rule "
            f"per {route.kind} (as {route.kind} v1 allows)"
        )
    node.common_conditions.append(_resolved_refs_condition(unresolved))


def _resolved_refs_condition(unresolved: list[Condition]) -> Condition:
    if not unresolved:
        return c.route_resolved_refs()
    reasons = {cond.reason for cond in unresolved}
    reason = next(r for r in _RESOLVED_REFS_PRIORITY if r in reasons)
    return c.route_unresolved_refs(reason, "; ".join(cond.message for cond in unresolved))


def _attach(
    node: L4RouteNode,
    parent_ref: ParentReference,
    parent: GatewayNode | ListenerSetNode,
    snapshot: Snapshot,
) -> ParentStatus:
    route = node.obj
    if isinstance(parent, ListenerSetNode):
        gateway = parent.gateway
        status = ParentStatus(parent_ref, gateway, [], listener_set=parent)
    else:
        gateway = parent
        status = ParentStatus(parent_ref, gateway, [])
    # A Gateway parentRef covers the Gateway's own listeners, never a ListenerSet's.
    candidates = parent.listeners
    if parent_ref.section_name is not None:
        candidates = [ln for ln in candidates if ln.name == parent_ref.section_name]
    if parent_ref.port is not None:
        candidates = [ln for ln in candidates if ln.spec.port == parent_ref.port]
    allowed = [ln for ln in candidates if _allows(ln, route, snapshot)]
    attached = [(ln, hosts) for ln in allowed if (hosts := _hostnames(ln, route))]
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
        kind = (GATEWAY_GROUP, route.kind)
        if any(kind in ln.supported_kinds for ln in candidates):
            why = f"allows {route.kind}s from namespace {route.namespace}"
        else:
            protocols = ", ".join(sorted({ln.spec.protocol for ln in candidates}))
            why = f"supports the {route.kind} kind (listener protocols: {protocols})"
        status.conditions.append(
            c.route_not_allowed_by_listeners(
                f"no listener of {parent.obj.kind} {parent.namespace}/{parent.name} "
                f"{_selected(parent_ref)}{why}"
            )
        )
    elif not attached:
        assert isinstance(route, TLSRoute)
        status.conditions.append(
            c.route_no_matching_listener_hostname(
                f"none of the route's hostnames ({', '.join(route.spec.hostnames)}) "
                "matches a listener hostname"
            )
        )
    elif node.invalid is not None:
        status.conditions.append(node.invalid)
    else:
        status.conditions.append(c.route_accepted())
        status.listeners = attached
    status.conditions.extend(node.common_conditions)
    return status


def _hostnames(listener: ListenerNode, route: L4Route) -> list[str]:
    """SNI names the route serves on the listener ([]: none); TCP/UDP: every stream."""
    if isinstance(route, TLSRoute):
        return hostnames.effective_hostnames(listener.spec.hostname, route.spec.hostnames)
    return [hostnames.ANY]


def _allows(listener: ListenerNode, route: L4Route, snapshot: Snapshot) -> bool:
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


def _count_attached(nodes: Mapping[L4Key, L4RouteNode]) -> None:
    """AttachedRoutes counts each Accepted route once per listener."""
    for node in nodes.values():
        seen: set[int] = set()
        for parent in node.parents:
            for listener, hosts in parent.listeners:
                if id(listener) in seen:
                    continue
                seen.add(id(listener))
                listener.attached_routes += 1
                listener.l4_routes.append((node, hosts))
