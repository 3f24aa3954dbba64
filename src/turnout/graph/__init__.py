"""graph: what the Snapshot means, per the Gateway API spec.

A pure function of its input: no I/O, no clock, no randomness, no mutation of the
Snapshot. The same Snapshot and addresses give an identical Graph. Status
(`turnout.status`) and the IR (`turnout.ir.build`) are both read off the Graph.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from turnout.graph.backends import BackendResolver
from turnout.graph.backendtls import BackendTLSIndex, assign_ancestors
from turnout.graph.gateways import build_gateway_classes, build_gateways
from turnout.graph.incremental import Basis, ObjectKey, patch, patchable
from turnout.graph.l4routes import build_l4_routes
from turnout.graph.listenersets import build_listener_sets
from turnout.graph.memo import RuleMemo
from turnout.graph.model import Graph, Key
from turnout.graph.reattach import reattach, reattachable
from turnout.graph.routes import build_routes
from turnout.sources.snapshot import Snapshot


def build(
    snapshot: Snapshot,
    *,
    controller_name: str,
    addresses: Mapping[Key, str | None],
    unusable_addresses: Mapping[Key, tuple[str, ...]] | None = None,
    memo: RuleMemo | None = None,
) -> Graph:
    """Compute classes, gateways, listeners and routes with their verdicts.

    `addresses` maps each Gateway to the address assigned to it (by the runtime's
    allocator, which owns that state), or None when none could be assigned;
    `unusable_addresses` lists the requested static addresses it could not give, with
    the reason. `memo`, kept by the caller across builds, lets unchanged routes reuse
    their rule resolution (graph/memo.py); the Graph is the same without it.
    """
    return _build(
        snapshot,
        controller_name=controller_name,
        addresses=addresses,
        unusable_addresses=unusable_addresses,
        memo=memo,
    )[0]


def update(
    snapshot: Snapshot,
    changed: Collection[ObjectKey] | None,
    basis: Basis | None,
    *,
    controller_name: str,
    addresses: Mapping[Key, str | None],
    unusable_addresses: Mapping[Key, tuple[str, ...]] | None = None,
    memo: RuleMemo | None = None,
) -> tuple[Graph, Basis]:
    """``build``, or a patch of the last Graph when only HTTPRoutes, GRPCRoutes,
    Services, EndpointSlices and (most) Secrets, ReferenceGrants and Namespaces changed
    (graph/incremental.py), or its routes reattached to rebuilt Gateways when only
    Gateways, ListenerSets, GatewayClasses and certificates did (graph/reattach.py). ``changed``: the keys the source says changed since the
    Snapshot of ``basis`` (None: unknown). The Graph of ``basis`` is consumed; the
    returned Basis is the one to pass next time."""
    unusable = unusable_addresses or {}
    if (
        basis is not None
        and changed is not None
        and patchable(
            basis,
            snapshot,
            changed,
            controller_name=controller_name,
            addresses=addresses,
            unusable_addresses=unusable,
        )
    ):
        patched = patch(basis, snapshot, changed, memo)
        if patched is not None:
            return patched, basis
    if basis is not None and reattachable(
        basis, snapshot, changed, controller_name=controller_name
    ):
        reattached = reattach(
            basis, snapshot, addresses=addresses, unusable_addresses=unusable, memo=memo
        )
        if reattached is not None:
            return reattached
    built, resolver = _build(
        snapshot,
        controller_name=controller_name,
        addresses=addresses,
        unusable_addresses=unusable,
        memo=memo,
    )
    return built, Basis(built, snapshot, resolver, dict(addresses), dict(unusable))


def _build(
    snapshot: Snapshot,
    *,
    controller_name: str,
    addresses: Mapping[Key, str | None],
    unusable_addresses: Mapping[Key, tuple[str, ...]] | None,
    memo: RuleMemo | None,
) -> tuple[Graph, BackendResolver]:
    if memo is not None:
        memo.begin()
    # GatewayClasses first: a Gateway is only ours if its class is.
    classes = build_gateway_classes(snapshot, controller_name)
    # Gateways and listeners: protocols, kinds and conflicts; routes need the result.
    gateways = build_gateways(snapshot, classes, addresses, unusable_addresses or {})
    # ListenerSets add listeners to accepted Gateways; their conflicts need the Gateway's.
    listener_sets = build_listener_sets(snapshot, gateways)
    # BackendTLSPolicies before routes: a backendRef to a port with an unusable policy
    # is invalid (never plaintext).
    tls_index = BackendTLSIndex(snapshot)
    # Routes of every kind: rules, backends and attachment; this also resolves
    # HTTPRoute/GRPCRoute hostname conflicts and counts attachedRoutes.
    resolver = BackendResolver(snapshot, tls_index)
    http_routes, grpc_routes = build_routes(snapshot, gateways, listener_sets, resolver, memo)
    # Policy status goes to the Gateways whose routes use the targeted ports.
    assign_ancestors(
        tls_index, [*http_routes.values(), *grpc_routes.values()], resolver.cluster_ports
    )
    # TCPRoutes, TLSRoutes, UDPRoutes: the same attachment rules, no matching.
    l4_routes = build_l4_routes(snapshot, gateways, listener_sets, resolver)
    built = Graph(
        controller_name=controller_name,
        gateway_classes=classes,
        gateways=gateways,
        routes=http_routes,
        listener_sets=listener_sets,
        clusters=resolver.clusters,
        grpc_routes=grpc_routes,
        cluster_protocols=resolver.cluster_protocols,
        backend_tls_policies=tls_index.policies,
        cluster_tls=resolver.cluster_tls,
        l4_routes=l4_routes,
    )
    return built, resolver


def gateways_of_our_classes(snapshot: Snapshot, controller_name: str) -> list[Key]:
    """Keys of the Gateways that need an address, in a stable order."""
    ours = {
        name
        for name, gateway_class in snapshot.gateway_classes.items()
        if gateway_class.spec.controller_name == controller_name
    }
    return sorted(k for k, gw in snapshot.gateways.items() if gw.spec.gateway_class_name in ours)


__all__ = ["Basis", "Graph", "build", "gateways_of_our_classes", "update"]
