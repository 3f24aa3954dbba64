"""Patching the last Graph when only HTTPRoutes, GRPCRoutes, Services, EndpointSlices,
Secrets, ReferenceGrants and Namespaces changed.

Place in the pipeline: Snapshot -> **graph** (``graph.update``) -> Graph. At thousands
of routes, a change usually touches one route, yet ``graph.build`` validates, resolves
and attaches every route again. When the source says which objects changed
(``LoadResult.changed``) and all of them are of those kinds, the previous Graph is
patched: only the changed routes and the routes whose backendRefs or mirrors name a
changed Service are rebuilt (rules, backends, parents), and what depends on them
outside themselves is updated:

* GEP-1016 (an HTTPRoute and a GRPCRoute may not share a hostname on a listener): the
  verdicts on the listeners the rebuilt routes attach or attached to, and only the
  routes whose verdict there may change (graph/crossserving.py ``CrossServing``);
* the listeners they attach to: ``attachedRoutes`` and ``ListenerNode.routes`` (kept in
  the order a build counts them: HTTPRoutes, then GRPCRoutes, each by key);
* the clusters: exactly those some route's backends or mirrors resolve to (counted per
  cluster), with the endpoints of Services whose EndpointSlices changed recomputed (a
  backendRef resolves to the same cluster whatever its endpoints);
* Secrets (a certificate rotated): the Gateway listeners whose certificateRefs name
  them, and their Gateways' conditions (graph/rotation.py); no route depends on them.
* ReferenceGrants (graph/references.py): the routes whose backendRefs or mirrors reach
  into a changed grant's namespace from a (kind, namespace) its old or new
  ``spec.from`` names are rebuilt as changed routes, and the Gateway listeners whose
  certificateRefs do are refreshed as for a rotated Secret;
* Namespaces (their labels): when some listener selects namespaces by label, the
  routes of a changed Namespace are rebuilt as changed routes (their attachment).

Everything else of a Graph is a function of objects that did not change (Gateways and
their listeners never depend on routes). What this does not follow precisely takes the
full build: any other kind changed (ConfigMaps, BackendTLSPolicies, TCP/TLS/UDPRoutes;
Gateways, ListenerSets and GatewayClasses, unless they alone changed, with Secrets and
ConfigMaps no BackendTLSPolicy reads: then graph/reattach.py reattaches the routes to
the rebuilt Gateways, also for a Secret that rotation.py does not follow); a changed Secret that a Gateway's
``spec.tls`` (client CA validation, backend client certificate) or a ListenerSet's
listener names; a changed Service that a TCP/TLS/UDPRoute uses; a changed
ReferenceGrant that concerns a reference of a Gateway's ``spec.tls``, of a ListenerSet's
listener or of a TCP/TLS/UDPRoute; a changed Namespace, while some listener selects
namespaces by label, that holds a ListenerSet or a TCP/TLS/UDPRoute; a BackendTLSPolicy
present (its
ancestors are the Gateways of every route using its port); a TCP/TLS/UDPRoute with
several rules (their other rules' backends still make clusters); different Gateway
addresses or controller name; an object added or removed in a way the source cannot
patch (sources/files.py). The result equals ``graph.build`` of the new Snapshot
(tests/graph/test_incremental_graph.py checks it on random edit sequences).

The previous Graph is **consumed**: its Gateway and listener nodes (and the parents of
routes whose GEP-1016 verdict changed) are reused and updated in place, so it must not
be read (nor released) afterwards."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping

from turnout.graph import references, rotation
from turnout.graph.backends import BackendResolver
from turnout.graph.crossserving import CrossServing, insert_route
from turnout.graph.memo import RuleMemo
from turnout.graph.model import Graph, Key, L4Route, ListenerNode, Route, RouteNode
from turnout.graph.routes import route_node
from turnout.sources.snapshot import Snapshot

ObjectKey = tuple[str, str, str]

# HTTPRoutes: their nodes are rebuilt. Services: the nodes of the HTTPRoutes referring
# to them are rebuilt. EndpointSlices: only the endpoints of clusters depend on them (a
# backendRef resolves the same whatever the endpoints).
# ReferenceGrants and Namespaces: the routes and listeners whose references or
# attachment they may change are rebuilt or refreshed (graph/references.py).
_PATCHED_KINDS = frozenset(
    {"HTTPRoute", "GRPCRoute", "EndpointSlice", "Service", "Secret", "ReferenceGrant", "Namespace"}
)


@dataclasses.dataclass
class Basis:
    """What the last full build or patch started from; kept by the caller."""

    graph: Graph
    snapshot: Snapshot
    resolver: BackendResolver
    addresses: Mapping[Key, str | None]
    unusable_addresses: Mapping[Key, tuple[str, ...]]
    # How many routes resolved to each cluster; counted at the first patch.
    cluster_refs: Counter[str] | None = None
    # Who lost a listener to GEP-1016 cross serving; found at the first patch with
    # GRPCRoutes.
    cross: CrossServing | None = None


def patchable(
    basis: Basis | None,
    snapshot: Snapshot,
    changed: Collection[ObjectKey] | None,
    *,
    controller_name: str,
    addresses: Mapping[Key, str | None],
    unusable_addresses: Mapping[Key, tuple[str, ...]],
) -> bool:
    """Can ``patch`` compute the Graph of ``snapshot`` from ``basis``?"""
    return (
        basis is not None
        and changed is not None
        and all(kind in _PATCHED_KINDS for kind, _, _ in changed)
        and basis.graph.controller_name == controller_name
        and dict(basis.addresses) == dict(addresses)
        and dict(basis.unusable_addresses) == dict(unusable_addresses)
        and not snapshot.backend_tls_policies
        and all(len(node.obj.spec.rules) <= 1 for node in basis.graph.l4_routes.values())
        and not _l4_uses(
            basis.graph, {(ns, name) for kind, ns, name in changed if kind == "Service"}
        )
    )


def patch(
    basis: Basis, snapshot: Snapshot, changed: Collection[ObjectKey], memo: RuleMemo | None
) -> Graph | None:
    """The Graph of ``snapshot``, from ``basis`` (consumed) and the changed HTTPRoutes,
    GRPCRoutes, Services, EndpointSlices, Secrets, ReferenceGrants and Namespaces; None
    (``basis`` untouched) when a changed Secret, ReferenceGrant or Namespace is read
    where graph/rotation.py or graph/references.py does not follow it."""
    graph, resolver = basis.graph, basis.resolver
    secrets = {(ns, name) for kind, ns, name in changed if kind == "Secret"}
    rotated = rotation.affected(graph, snapshot, secrets)
    granted = references.affected(graph, basis.snapshot, snapshot, changed)
    if rotated is None or granted is None:
        return None
    listeners = {id(listener): listener for listener in [*rotated, *granted.listeners]}
    # Routes depend on neither certificates nor listeners' grants.
    rotation.refresh(graph, snapshot, list(listeners.values()))
    grant_namespaces = {ns for kind, ns, _ in changed if kind == "ReferenceGrant"}
    if grant_namespaces:
        resolver.refresh_grants(snapshot, grant_namespaces)
    if resolver.clusters is graph.clusters:  # built by it: the resolver must not add there
        resolver.clusters = dict(resolver.clusters)
        resolver.cluster_protocols = dict(resolver.cluster_protocols)
        resolver.cluster_ports = dict(resolver.cluster_ports)
    if memo is not None:
        memo.carry_over()
    refs = basis.cluster_refs
    if refs is None:
        every = [*graph.routes.values(), *graph.grpc_routes.values()]
        refs = basis.cluster_refs = Counter(_cluster_names(graph, every))
    # GEP-1016 conflicts need deciding again only when GRPCRoutes are or were present.
    mixed = bool(graph.grpc_routes or snapshot.grpc_routes)
    if mixed and basis.cross is None:
        basis.cross = CrossServing([*graph.routes.values(), *graph.grpc_routes.values()])
    services = {(ns, name) for kind, ns, name in changed if kind == "Service"}
    kinds: dict[str, tuple[dict[Key, RouteNode], Mapping[Key, Route]]] = {
        "HTTPRoute": (graph.routes, snapshot.http_routes),
        "GRPCRoute": (graph.grpc_routes, snapshot.grpc_routes),
    }
    rebuilt = {(kind, ns, name) for kind, ns, name in changed if kind in kinds}
    rebuilt.update(granted.routes)
    if services:
        resolver.forget_services(snapshot, services)
        for kind, (nodes, _) in kinds.items():
            rebuilt.update((kind, *key) for key, node in nodes.items() if _uses(node.obj, services))
    tables = {kind: dict(nodes) for kind, (nodes, _) in kinds.items()}
    touched: list[str] = []
    removed: list[RouteNode] = []
    for kind, ns, name in sorted(rebuilt):  # first every replaced node off its listeners
        old = tables[kind].pop((ns, name), None)
        if old is not None:
            _detach(old)
            removed.append(old)
            touched.extend(_route_clusters(old))
            refs.subtract(_route_clusters(old))
            if memo is not None:
                memo.forget(old.obj)
    added: list[RouteNode] = []
    for kind, ns, name in sorted(rebuilt):
        route = kinds[kind][1].get((ns, name))
        if route is not None:
            node = route_node(route, snapshot, graph.gateways, graph.listener_sets, resolver, memo)
            added.append(node)
            touched.extend(_route_clusters(node))
            refs.update(_route_clusters(node))
            tables[kind][(ns, name)] = node
    if basis.cross is not None and mixed:
        basis.cross.settle(removed, added)  # before counting: a route may lose a listener
    for node in added:
        _attach(node)
    for kind, (nodes, _) in kinds.items():
        if tables[kind].keys() != nodes.keys():
            tables[kind] = dict(sorted(tables[kind].items()))
    clusters, protocols = dict(graph.clusters), dict(graph.cluster_protocols)
    for name in touched:  # every cluster name whose count changed
        if refs[name] <= 0:
            del refs[name]
            clusters.pop(name, None)
            protocols.pop(name, None)
        else:
            clusters[name] = resolver.clusters[name]
            if name in resolver.cluster_protocols:
                protocols[name] = resolver.cluster_protocols[name]
            else:
                protocols.pop(name, None)
    sliced = _services_of_slices(basis.snapshot, snapshot, changed)
    if sliced:
        clusters.update(
            (name, endpoints)
            for name, endpoints in resolver.refresh_endpoints(snapshot, sliced).items()
            if name in clusters
        )
    basis.snapshot = snapshot
    basis.graph = dataclasses.replace(
        graph,
        routes=tables["HTTPRoute"],
        grpc_routes=tables["GRPCRoute"],
        clusters=clusters,
        cluster_protocols=protocols,
    )
    return basis.graph


def _listeners(node: RouteNode) -> Iterator[tuple[ListenerNode, list[str]]]:
    """Each listener the route counts on, once (as routes._count_attached counts)."""
    seen: set[int] = set()
    for parent in node.parents:
        for listener, hosts in parent.listeners:
            if id(listener) not in seen:
                seen.add(id(listener))
                yield listener, hosts


def _detach(node: RouteNode) -> None:
    for listener, _ in _listeners(node):
        listener.attached_routes -= 1
        listener.routes = [entry for entry in listener.routes if entry[0] is not node]


def _attach(node: RouteNode) -> None:
    for listener, hosts in _listeners(node):
        listener.attached_routes += 1
        insert_route(listener, (node, hosts))


def _cluster_names(graph: Graph, routes: Iterable[RouteNode]) -> Iterator[str]:
    """Every cluster a route resolved to: what the resolver added during a build."""
    for node in routes:
        yield from _route_clusters(node)
    for l4 in graph.l4_routes.values():
        yield from (b.cluster for b in l4.backends if b.cluster is not None)


def _route_clusters(node: RouteNode) -> Iterator[str]:
    """The clusters the route's backends and mirrors resolved to (with repeats)."""
    for rule in node.rules:
        for backend in rule.backends:
            if backend.cluster is not None:
                yield backend.cluster
        for mirrors in (rule.mirror_clusters, *rule.backend_mirror_clusters):
            yield from (m for m in mirrors if m is not None)


def _services_of_slices(
    old: Snapshot, new: Snapshot, changed: Collection[ObjectKey]
) -> set[tuple[str, str]]:
    """The Services whose EndpointSlices changed (before or after the change)."""
    services = set()
    for kind, namespace, name in changed:
        if kind != "EndpointSlice":
            continue
        for snapshot in (old, new):
            endpoint_slice = snapshot.endpoint_slices.get((namespace, name))
            if endpoint_slice is not None and endpoint_slice.service_name:
                services.add((namespace, endpoint_slice.service_name))
    return services


def _uses(route: Route | L4Route, services: set[tuple[str, str]]) -> bool:
    """Does a backendRef or a mirror of ``route`` name one of ``services``?"""
    return any(
        (ref.namespace or route.namespace, ref.name) in services
        for ref in references.route_refs(route)
    )


def _l4_uses(graph: Graph, services: set[tuple[str, str]]) -> bool:
    return bool(services) and any(_uses(node.obj, services) for node in graph.l4_routes.values())
