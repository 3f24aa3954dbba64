"""The Snapshot: every object the graph reads, as of one load.

Place in the pipeline: sources -> **Snapshot** -> graph -> (status, IR) -> data plane.
A source (files today, the API server later) builds a new Snapshot on each change; the
graph reads it and never mutates it. The dicts are plain dicts for speed and easy
typing, but they are **read-only by contract**: the models inside are frozen, and
nobody may add or remove entries after the source returned the Snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from turnout.resources import (
    BackendTLSPolicy,
    ConfigMap,
    EndpointSlice,
    Gateway,
    GatewayClass,
    GRPCRoute,
    HTTPRoute,
    ListenerSet,
    Namespace,
    ReferenceGrant,
    Secret,
    Service,
    TCPRoute,
    TLSRoute,
    UDPRoute,
)

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Label the API server puts on every Namespace (its own name)."""

NamespacedKey = tuple[str, str]
"""(namespace, name)."""


@dataclass(frozen=True)
class Snapshot:
    """All objects of one load, keyed by name (cluster-scoped) or (namespace, name)."""

    gateway_classes: dict[str, GatewayClass] = field(default_factory=dict)
    gateways: dict[NamespacedKey, Gateway] = field(default_factory=dict)
    http_routes: dict[NamespacedKey, HTTPRoute] = field(default_factory=dict)
    grpc_routes: dict[NamespacedKey, GRPCRoute] = field(default_factory=dict)
    listener_sets: dict[NamespacedKey, ListenerSet] = field(default_factory=dict)
    tcp_routes: dict[NamespacedKey, TCPRoute] = field(default_factory=dict)
    tls_routes: dict[NamespacedKey, TLSRoute] = field(default_factory=dict)
    udp_routes: dict[NamespacedKey, UDPRoute] = field(default_factory=dict)
    reference_grants: dict[NamespacedKey, ReferenceGrant] = field(default_factory=dict)
    services: dict[NamespacedKey, Service] = field(default_factory=dict)
    endpoint_slices: dict[NamespacedKey, EndpointSlice] = field(default_factory=dict)
    secrets: dict[NamespacedKey, Secret] = field(default_factory=dict)
    config_maps: dict[NamespacedKey, ConfigMap] = field(default_factory=dict)
    backend_tls_policies: dict[NamespacedKey, BackendTLSPolicy] = field(default_factory=dict)
    namespaces: dict[str, Namespace] = field(default_factory=dict)

    def namespace_labels(self, ns: str) -> dict[str, str]:
        """Labels of namespace ``ns`` as the API server would report them.

        A namespace that is referenced but not declared exists implicitly, with only the
        ``kubernetes.io/metadata.name`` label (which the API server always sets).
        """
        declared = self.namespaces.get(ns)
        labels = dict(declared.metadata.labels) if declared is not None else {}
        labels[NAMESPACE_NAME_LABEL] = ns
        return labels

    def endpoint_slices_for(self, namespace: str, service: str) -> list[EndpointSlice]:
        """The EndpointSlices of Service ``namespace/service``, sorted by name."""
        return [
            eps
            for (ns, _), eps in sorted(self.endpoint_slices.items())
            if ns == namespace and eps.service_name == service
        ]
