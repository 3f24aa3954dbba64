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

import functools
from collections.abc import Mapping

from turnout.graph import hostnames
from turnout.graph.attachment import Verdicts, attach_parents, resolved_refs_condition
from turnout.graph.backends import BackendResolver, BackendTarget
from turnout.graph.model import (
    GatewayNode,
    Key,
    L4Route,
    L4RouteNode,
    ListenerNode,
    ListenerSetNode,
    ResolvedBackend,
)
from turnout.resources import TLSRoute
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c
from turnout.status.conditions import Condition

L4Key = tuple[str, str, str]  # (kind, namespace, name)


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
    verdicts: Verdicts = {}
    for kind, routes in kinds:
        for key, route in sorted(routes.items()):
            node = L4RouteNode(route)
            _resolve_backends(node, resolver)
            attach_l4_route(node, snapshot, gateways, listener_sets, verdicts)
            nodes[(kind, *key)] = node
    count_attached(nodes)
    return nodes


def attach_l4_route(
    node: L4RouteNode,
    snapshot: Snapshot,
    gateways: Mapping[Key, GatewayNode],
    listener_sets: Mapping[Key, ListenerSetNode],
    verdicts: Verdicts | None = None,
) -> None:
    """Fill ``node.parents`` (its backends resolved); reads ``invalid`` and
    ``common_conditions``, never the backends. ``verdicts``: see ``attach_parents``."""
    route = node.obj
    attach_parents(
        node,
        snapshot,
        gateways,
        listener_sets,
        hostnames_on=functools.partial(_hostnames, route=route),
        route_hostnames=getattr(route.spec, "hostnames", []),
        verdicts=verdicts,
    )


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
    node.common_conditions.append(resolved_refs_condition(unresolved))


def _hostnames(listener: ListenerNode, *, route: L4Route) -> list[str]:
    """SNI names the route serves on the listener ([]: none); TCP/UDP: every stream."""
    if isinstance(route, TLSRoute):
        return hostnames.effective_hostnames(listener.spec.hostname, route.spec.hostnames)
    return [hostnames.ANY]


def count_attached(nodes: Mapping[L4Key, L4RouteNode]) -> None:
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
