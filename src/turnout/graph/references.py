"""ReferenceGrant and Namespace changes patched into the last Graph.

Place in the pipeline: Snapshot -> **graph** (``graph.update`` -> graph/incremental.py)
-> Graph. This says what such a change can alter, so that only that is computed again:

* A ReferenceGrant in namespace T permits references *from* the (group, kind,
  namespace) entries of its ``spec.from`` *to* objects of T (GEP-709). Comparing the
  old and the new version of each changed grant (either may be absent: added, removed)
  gives, per T, the (kind, namespace) pairs whose references into T may now be
  permitted or refused. Only the references of those pairs into T are read again: the
  backendRefs and mirrors of HTTPRoutes and GRPCRoutes (their routes are rebuilt as
  changed routes: ResolvedRefs / RefNotPermitted, clusters) and the certificateRefs of
  Gateway listeners (refreshed as graph/rotation.py refreshes a rotated certificate:
  ResolvedRefs, certificates, the Gateway's conditions). ``spec.to`` is not used to
  narrow this further: re-reading a few more references is still exact. The other
  readers of grants take the full build when a pair of the change reaches into T:
  a Gateway's ``spec.tls`` (client CA refs can make a listener not Accepted; the
  backend client certificate), a ListenerSet's certificateRefs (they decide its
  conditions) and TCP/TLS/UDPRoutes (not patched). BackendTLSPolicies already keep a
  config off the patch path.
* A Namespace's labels are read only by ``allowedRoutes.namespaces.from: Selector``
  (graph/attachment.py) and ``allowedListeners.namespaces.from: Selector``
  (graph/listenersets.py); ``Same`` and ``All`` compare names. With no Selector in any
  Gateway or ListenerSet, a Namespace change alters nothing. Otherwise the HTTPRoutes
  and GRPCRoutes of that namespace are rebuilt as changed routes (their parents and
  the listeners' attachedRoutes follow), and a ListenerSet or a TCP/TLS/UDPRoute in
  that namespace takes the full build.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from turnout.graph.gateways import GATEWAY_GROUP
from turnout.graph.model import Graph, L4Route, ListenerNode, Route
from turnout.resources import Gateway
from turnout.resources.gateway import Listener
from turnout.resources.meta import BackendObjectReference
from turnout.sources.snapshot import Snapshot

ObjectKey = tuple[str, str, str]
# target namespace -> the (from kind, from namespace) whose references into it changed
Scope = dict[str, set[tuple[str, str]]]


@dataclass
class Affected:
    """What a ReferenceGrant or Namespace change needs computed again."""

    routes: set[ObjectKey] = field(default_factory=set)  # (kind, namespace, name)
    listeners: list[ListenerNode] = field(default_factory=list)


def affected(
    graph: Graph, old: Snapshot, new: Snapshot, changed: Collection[ObjectKey]
) -> Affected | None:
    """The routes and Gateway listeners that the changed ReferenceGrants and Namespaces
    of ``changed`` may alter; None when something else reads them (the full build)."""
    found = Affected()
    grants = {(ns, name) for kind, ns, name in changed if kind == "ReferenceGrant"}
    scope = grant_scope(old, new, grants)
    if scope:
        if _grant_read_elsewhere(graph, new, scope):
            return None
        for kind, nodes in (("HTTPRoute", graph.routes), ("GRPCRoute", graph.grpc_routes)):
            found.routes.update(
                (kind, *key)
                for key, node in nodes.items()
                if _crosses(scope, kind, node.namespace, _targets(route_refs(node.obj)))
            )
        found.listeners = [
            listener
            for node in graph.gateways.values()
            for listener in node.listeners
            if _crosses(scope, "Gateway", node.namespace, _cert_targets([listener.spec]))
        ]
    namespaces = {name for kind, _, name in changed if kind == "Namespace"}
    if namespaces and _selectors(new):
        if any(node.namespace in namespaces for node in graph.l4_routes.values()) or any(
            ns in namespaces for ns, _ in new.listener_sets
        ):
            return None
        for kind, nodes in (("HTTPRoute", graph.routes), ("GRPCRoute", graph.grpc_routes)):
            found.routes.update((kind, *key) for key in nodes if key[0] in namespaces)
    return found


def grant_scope(old: Snapshot, new: Snapshot, grants: Iterable[tuple[str, str]]) -> Scope:
    """Per namespace of a changed grant, the (kind, namespace) its old or new version
    lets refer into it. Only Gateway API kinds are ever checked against grants here."""
    scope: Scope = defaultdict(set)
    for namespace, name in grants:
        for snapshot in (old, new):
            grant = snapshot.reference_grants.get((namespace, name))
            if grant is not None:
                scope[namespace].update(
                    (entry.kind, entry.namespace)
                    for entry in grant.spec.from_
                    if entry.group == GATEWAY_GROUP
                )
    return {namespace: pairs for namespace, pairs in scope.items() if pairs}


def route_refs(route: Route | L4Route) -> list[BackendObjectReference]:
    """Every backendRef of ``route`` and every mirror's backendRef (rule or backend)."""
    refs: list[BackendObjectReference] = []
    for rule in route.spec.rules:
        refs.extend(rule.backend_refs)
        for flt in getattr(rule, "filters", ()):
            if flt.request_mirror is not None:
                refs.append(flt.request_mirror.backend_ref)
        for backend in rule.backend_refs:
            for flt in getattr(backend, "filters", ()):
                if flt.request_mirror is not None:
                    refs.append(flt.request_mirror.backend_ref)
    return refs


def _targets(refs: Iterable[BackendObjectReference]) -> Iterator[str | None]:
    return (ref.namespace for ref in refs)


def _cert_targets(listeners: Iterable[Listener]) -> Iterator[str | None]:
    for listener in listeners:
        if listener.tls is not None:
            yield from (ref.namespace for ref in listener.tls.certificate_refs)


def _crosses(scope: Scope, kind: str, namespace: str, targets: Iterable[str | None]) -> bool:
    """Does an object of ``kind`` in ``namespace`` refer into a namespace of ``scope``
    whose change concerns it? (A reference without a namespace stays in its own.)"""
    return any(
        target is not None and target != namespace and (kind, namespace) in scope.get(target, ())
        for target in targets
    )


def _grant_read_elsewhere(graph: Graph, snapshot: Snapshot, scope: Scope) -> bool:
    """Is a reference that the changed grants concern read where no patch follows it?"""
    for gateway in snapshot.gateways.values():
        if _crosses(scope, "Gateway", gateway.namespace, _spec_tls_targets(gateway)):
            return True
    for listener_set in snapshot.listener_sets.values():
        targets = _cert_targets(listener_set.spec.listeners)
        if _crosses(scope, "ListenerSet", listener_set.namespace, targets):
            return True
    return any(
        _crosses(scope, node.obj.kind, node.namespace, _targets(route_refs(node.obj)))
        for node in graph.l4_routes.values()
    )


def _spec_tls_targets(gateway: Gateway) -> Iterator[str | None]:
    """The namespaces a Gateway's ``spec.tls`` refers to (CA refs, client certificate)."""
    spec_tls = gateway.spec.tls
    if spec_tls is None:
        return
    if spec_tls.frontend is not None:
        validations = [spec_tls.frontend.default.validation]
        validations += [per_port.tls.validation for per_port in spec_tls.frontend.per_port]
        for validation in validations:
            if validation is not None:
                yield from (ref.namespace for ref in validation.ca_certificate_refs)
    if spec_tls.backend is not None and spec_tls.backend.client_certificate_ref is not None:
        yield spec_tls.backend.client_certificate_ref.namespace


def _selectors(snapshot: Snapshot) -> bool:
    """Does any Gateway or ListenerSet select namespaces by label?"""
    for gateway in snapshot.gateways.values():
        allowed = gateway.spec.allowed_listeners
        if allowed is not None and allowed.namespaces.from_ == "Selector":
            return True
        if _selecting(gateway.spec.listeners):
            return True
    return any(_selecting(ls.spec.listeners) for ls in snapshot.listener_sets.values())


def _selecting(listeners: Iterable[Listener]) -> bool:
    return any(listener.allowed_routes.namespaces.from_ == "Selector" for listener in listeners)


__all__ = ["Affected", "affected", "grant_scope", "route_refs"]
