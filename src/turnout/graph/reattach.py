"""Rebuilding Gateways and ListenerSets and reattaching the routes, when only they changed.

Place in the pipeline: Snapshot -> **graph** (``graph.update``) -> Graph. A Gateway
edit (a listener added, removed, its hostname or allowedRoutes changed), a ListenerSet
or a GatewayClass edit, or a Secret or ConfigMap that only Gateways and ListenerSets
read (a certificate, a client CA), changes what routes attach to, never what their
rules resolve to: a route's rules, backends and their conditions (graph/routes.py
``_resolve_rules``, graph/l4routes.py ``_resolve_backends``) read only the route and
the BackendResolver, whose inputs (Services, EndpointSlices, ReferenceGrants,
BackendTLSPolicies, ConfigMaps, Secrets) are unchanged when only those kinds are. So
instead of the full build, which resolves every route again (at 5,000 routes, two
thirds of it), this:

* builds the GatewayClasses, Gateways, listeners and ListenerSets anew, as the full
  build does (they are few, and every listener verdict depends on its neighbours);
* gives every route a new node carrying its previous node's resolution (the very same
  rule objects, so the IR and status caches recognise them) and attaches it to the new
  listeners, then decides GEP-1016 cross serving and counts ``attachedRoutes`` as the
  full build does;
* keeps the clusters (a function of the routes' resolution only) and the resolver;
* validates the BackendTLSPolicies anew: their ancestors are the Gateways of the routes
  using their ports, and the previous nodes belong to the replaced Graph, which
  the runtime releases (graph/release.py).

The result equals ``graph.build`` of the new Snapshot (tests/graph/test_reattach.py
checks it on random sequences of Gateway and ListenerSet edits). Anything else changed
at the same time takes the full build (or graph/incremental.py's patch when only
route-level kinds changed). The previous Graph is left intact, and is released by the
caller like any replaced Graph.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from turnout.graph.attachment import Verdicts
from turnout.graph.backendtls import BackendTLSIndex, assign_ancestors
from turnout.graph.gateways import build_gateway_classes, build_gateways
from turnout.graph.incremental import Basis, ObjectKey
from turnout.graph.l4routes import L4Key, attach_l4_route, count_attached
from turnout.graph.listenersets import build_listener_sets
from turnout.graph.memo import RuleMemo
from turnout.graph.model import (
    GatewayNode,
    Graph,
    Key,
    L4Route,
    L4RouteNode,
    ListenerSetNode,
    Route,
    RouteNode,
)
from turnout.graph.routes import attach_route, settle_listeners
from turnout.sources.snapshot import Snapshot

# The kinds whose objects only the Gateway and listener nodes are built from.
_REATTACHED_KINDS = frozenset({"Gateway", "ListenerSet", "GatewayClass"})
# Read by Gateways and ListenerSets (certificates, client CAs), and by BackendTLSPolicies
# (CA certificates), which routes' backends depend on: reattached unless a policy reads
# the changed object.
_CERTIFICATE_KINDS = frozenset({"Secret", "ConfigMap"})


def reattachable(
    basis: Basis | None,
    snapshot: Snapshot,
    changed: Collection[ObjectKey] | None,
    *,
    controller_name: str,
) -> bool:
    """Did only Gateways, ListenerSets, GatewayClasses and Secrets or ConfigMaps that no
    BackendTLSPolicy reads change since ``basis``?"""
    return (
        basis is not None
        and bool(changed)
        and changed is not None
        and all(kind in _REATTACHED_KINDS | _CERTIFICATE_KINDS for kind, _, _ in changed)
        and not _read_by_policies(snapshot, changed)
        and basis.graph.controller_name == controller_name
    )


def _read_by_policies(snapshot: Snapshot, changed: Collection[ObjectKey]) -> bool:
    """Does a BackendTLSPolicy's caCertificateRef (local to the policy) name a changed
    Secret or ConfigMap? (Policies did not change: the same in both Snapshots.)"""
    certificates = {key for key in changed if key[0] in _CERTIFICATE_KINDS}
    return bool(certificates) and any(
        (ref.kind, policy.namespace, ref.name) in certificates
        for policy in snapshot.backend_tls_policies.values()
        for ref in policy.spec.validation.ca_certificate_refs
        if ref.group == ""
    )


def reattach(
    basis: Basis,
    snapshot: Snapshot,
    *,
    addresses: Mapping[Key, str | None],
    unusable_addresses: Mapping[Key, tuple[str, ...]],
    memo: RuleMemo | None,
) -> tuple[Graph, Basis] | None:
    """The Graph of ``snapshot`` (only what ``reattachable`` admits changed since
    ``basis``), and the Basis for the next update; None when the routes of
    ``basis`` are not those of ``snapshot`` (then the full build)."""
    previous = basis.graph
    if not (
        _same_routes(previous.routes, snapshot.http_routes)
        and _same_routes(previous.grpc_routes, snapshot.grpc_routes)
        and _same_l4_routes(previous.l4_routes, snapshot)
    ):
        return None
    if memo is not None:
        memo.carry_over()  # no rule is resolved: every entry stays for the next build
    classes = build_gateway_classes(snapshot, previous.controller_name)
    gateways = build_gateways(snapshot, classes, addresses, unusable_addresses)
    listener_sets = build_listener_sets(snapshot, gateways)
    verdicts: Verdicts = {}  # one pass over every route (graph/attachment.py)
    http = {
        key: _reattached(node, snapshot, gateways, listener_sets, verdicts)
        for key, node in previous.routes.items()
    }
    grpc = {
        key: _reattached(node, snapshot, gateways, listener_sets, verdicts)
        for key, node in previous.grpc_routes.items()
    }
    settle_listeners([*http.values(), *grpc.values()])
    tls_index = BackendTLSIndex(snapshot)
    assign_ancestors(tls_index, [*http.values(), *grpc.values()], basis.resolver.cluster_ports)
    l4_routes = {
        key: _reattached_l4(node, snapshot, gateways, listener_sets, verdicts)
        for key, node in previous.l4_routes.items()
    }
    count_attached(l4_routes)
    built = Graph(
        controller_name=previous.controller_name,
        gateway_classes=classes,
        gateways=gateways,
        routes=http,
        listener_sets=listener_sets,
        clusters=previous.clusters,
        grpc_routes=grpc,
        cluster_protocols=previous.cluster_protocols,
        backend_tls_policies=tls_index.policies,
        cluster_tls=previous.cluster_tls,
        l4_routes=l4_routes,
    )
    return built, Basis(
        built,
        snapshot,
        basis.resolver,
        dict(addresses),
        dict(unusable_addresses),
        # The routes and their clusters are the same; GEP-1016 verdicts are per listener
        # node, and those are new: found again at the next patch that needs them.
        cluster_refs=basis.cluster_refs,
        cross=None,
    )


def _same_routes(nodes: Mapping[Key, RouteNode], routes: Mapping[Key, Route]) -> bool:
    """The very same route objects (the file source keeps unchanged ones), in the key
    order a build makes their nodes in."""
    return len(nodes) == len(routes) and all(
        routes.get(key) is node.obj for key, node in nodes.items()
    )


def _same_l4_routes(nodes: Mapping[L4Key, L4RouteNode], snapshot: Snapshot) -> bool:
    kinds: dict[str, Mapping[Key, L4Route]] = {
        "TCPRoute": snapshot.tcp_routes,
        "TLSRoute": snapshot.tls_routes,
        "UDPRoute": snapshot.udp_routes,
    }
    return len(nodes) == sum(len(routes) for routes in kinds.values()) and all(
        kinds[kind].get((ns, name)) is node.obj for (kind, ns, name), node in nodes.items()
    )


def _reattached(
    previous: RouteNode,
    snapshot: Snapshot,
    gateways: Mapping[Key, GatewayNode],
    listener_sets: Mapping[Key, ListenerSetNode],
    verdicts: Verdicts,
) -> RouteNode:
    """A new node with ``previous``'s resolution (its lists copied: the replaced Graph is
    released, and nothing mutates the rules), attached to the new listeners."""
    node = RouteNode(
        previous.obj,
        rules=list(previous.rules),
        common_conditions=list(previous.common_conditions),
        invalid=previous.invalid,
    )
    attach_route(node, snapshot, gateways, listener_sets, verdicts)
    return node


def _reattached_l4(
    previous: L4RouteNode,
    snapshot: Snapshot,
    gateways: Mapping[Key, GatewayNode],
    listener_sets: Mapping[Key, ListenerSetNode],
    verdicts: Verdicts,
) -> L4RouteNode:
    node = L4RouteNode(
        previous.obj,
        backends=list(previous.backends),
        common_conditions=list(previous.common_conditions),
        invalid=previous.invalid,
    )
    attach_l4_route(node, snapshot, gateways, listener_sets, verdicts)
    return node
