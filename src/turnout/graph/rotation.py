"""Secret changes (certificate rotation) patched into the last Graph.

Place in the pipeline: Snapshot -> **graph** (``graph.update`` -> graph/incremental.py)
-> Graph. A renewed listener certificate (cert-manager rewriting a ``kubernetes.io/tls``
Secret) changes what a Gateway listener serves and its ``ResolvedRefs``, and through
them the Gateway's conditions; no route depends on it: attachment reads a listener's
kinds, allowedRoutes and hostname, which no Secret changes, and the verdicts that
decide whether a listener is Accepted (protocol, TLS mode, client CA validation,
conflicts) do not read ``certificateRefs`` either.

So ``refresh`` recomputes exactly the Gateway listeners whose ``certificateRefs`` name a
changed Secret, as ``graph.gateways.listener_node`` does in a build, and updates them in
place (certificates, not-programmable reason, ResolvedRefs), then the conditions of
their Gateways. ``affected`` says None (take the full build) when a changed Secret is
read anywhere else: a Gateway's ``spec.tls`` (client CA validation, backend client
certificate: they can change whether a listener is Accepted) or a ListenerSet's
listener (whose validity decides the ListenerSet's conditions). BackendTLSPolicies,
which may name Secrets as CA certificates, already keep a config off the patch path.
"""

from __future__ import annotations

from collections.abc import Iterator

from turnout.graph.gateways import gateway_conditions, listener_node
from turnout.graph.model import GatewayNode, Graph, ListenerNode
from turnout.resources import Gateway, Listener
from turnout.resources.meta import ObjectReference, SecretObjectReference
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c

NamespacedKey = tuple[str, str]


def affected(
    graph: Graph, snapshot: Snapshot, secrets: set[NamespacedKey]
) -> list[ListenerNode] | None:
    """Our Gateways' listeners whose certificateRefs name one of ``secrets``; None when
    one of them is also read where ``refresh`` does not follow it."""
    if not secrets:
        return []
    for gateway in snapshot.gateways.values():
        if any(ref in secrets for ref in _spec_tls_refs(gateway)):
            return None
    for listener_set in snapshot.listener_sets.values():
        for entry in listener_set.spec.listeners:
            if any(ref in secrets for ref in _certificate_refs(entry, listener_set.namespace)):
                return None
    return [
        listener
        for node in graph.gateways.values()
        for listener in node.listeners
        if any(ref in secrets for ref in _certificate_refs(listener.spec, node.namespace))
    ]


def refresh(graph: Graph, snapshot: Snapshot, listeners: list[ListenerNode]) -> None:
    """Recompute ``listeners`` (from ``affected``) and their Gateways' conditions."""
    gateways: dict[int, GatewayNode] = {}
    for listener in listeners:
        fresh = listener_node(listener.gateway, listener.spec, snapshot)
        resolved = next(cond for cond in fresh.conditions if cond.type == c.RESOLVED_REFS)
        listener.certificates = fresh.certificates
        listener.not_programmable = fresh.not_programmable
        listener.client_validation = fresh.client_validation
        listener.conditions = [
            resolved if cond.type == c.RESOLVED_REFS else cond for cond in listener.conditions
        ]
        gateways[id(listener.gateway)] = listener.gateway
    for gateway in gateways.values():
        gateway_conditions(gateway, snapshot)


def _certificate_refs(listener: Listener, namespace: str) -> Iterator[NamespacedKey]:
    if listener.tls is not None:
        for ref in listener.tls.certificate_refs:
            yield (ref.namespace or namespace, ref.name)


def _spec_tls_refs(gateway: Gateway) -> Iterator[NamespacedKey]:
    """Every object a Gateway's ``spec.tls`` names (CA certificates of any kind, the
    backend client certificate)."""
    spec_tls = gateway.spec.tls
    if spec_tls is None:
        return
    refs: list[ObjectReference | SecretObjectReference] = []
    if spec_tls.frontend is not None:
        validations = [spec_tls.frontend.default.validation]
        validations += [per_port.tls.validation for per_port in spec_tls.frontend.per_port]
        for validation in validations:
            if validation is not None:
                refs.extend(validation.ca_certificate_refs)
    if spec_tls.backend is not None and spec_tls.backend.client_certificate_ref is not None:
        refs.append(spec_tls.backend.client_certificate_ref)
    for ref in refs:
        yield (ref.namespace or gateway.namespace, ref.name)
