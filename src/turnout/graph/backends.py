"""backendRefs: kind checks, ReferenceGrants, Services, ports and ready endpoints.

Resolution follows HTTPRouteRule.BackendRefs and GEP-709: a cross-namespace reference
needs a ReferenceGrant in the target namespace; an unresolvable reference makes the
route's ResolvedRefs False with the matching reason, and its share of traffic gets 500.
The upstream protocol comes from the Service port's appProtocol (GEP-1911) and, for
GRPCRoute backends without one, from the route kind (h2c).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from turnout.resources import EndpointSlice, ReferenceGrant
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c
from turnout.status.conditions import Condition

if TYPE_CHECKING:
    from turnout.graph.backendtls import BackendTLSIndex, UpstreamTLSSettings

# Service port appProtocols the data plane cannot speak (GEP-1911). Unknown values are
# treated as plain HTTP, as the spec only requires honouring known ones; the h2c ones
# (_H2C_APP_PROTOCOLS, gRPC included) are spoken with HTTP/2 (dataplane/upstream_h2).
# kubernetes.io/ws is HTTP/1.1 whose WebSocket handshakes the data plane passes on
# (dataplane/tunnel.py), so it is served as a plain HTTP/1.1 backend.
_UNSUPPORTED_APP_PROTOCOLS = {
    "kubernetes.io/wss": "WebSocket over TLS backends are not supported yet",
    "https": "TLS backends need a BackendTLSPolicy targeting the port",
}

# appProtocols that mean HTTP/2 with prior knowledge: KEP-3726's kubernetes.io/h2c and
# the spellings meshes use for it. A GRPCRoute sends to these as they are, and to ports
# without appProtocol as h2c too: gRPC is HTTP/2, and GRPCBackendRef lets an
# implementation infer the protocol from the route kind.
_H2C_APP_PROTOCOLS = frozenset({"kubernetes.io/h2c", "h2c", "grpc", "http2"})
# Of those, the ones that say cleartext: a BackendTLSPolicy on such a port is a mistake.
_CLEARTEXT_H2_APP_PROTOCOLS = frozenset({"kubernetes.io/h2c", "h2c"})
# appProtocols a GRPCRoute cannot be carried over (GEP-1911: UnsupportedProtocol).
_NOT_FOR_GRPC = {
    "http": "gRPC needs HTTP/2, and the port speaks HTTP/1.1",
    "kubernetes.io/ws": "gRPC cannot be carried over WebSocket",
    "kubernetes.io/wss": "gRPC cannot be carried over WebSocket",
    "https": "TLS backends need a BackendTLSPolicy targeting the port",
}


@dataclass(frozen=True)
class BackendTarget:
    """A reference by kind: (group, kind, namespace, name, port)."""

    group: str
    kind: str
    namespace: str
    name: str
    port: int | None


class BackendResolver:
    """Indexes the Snapshot once so that resolving thousands of refs stays cheap."""

    def __init__(self, snapshot: Snapshot, tls_index: BackendTLSIndex | None = None) -> None:
        self._snapshot = snapshot
        self._tls_index = tls_index
        self._slices: dict[tuple[str, str], list[EndpointSlice]] = defaultdict(list)
        for (namespace, _), endpoint_slice in sorted(snapshot.endpoint_slices.items()):
            service = endpoint_slice.service_name
            if service:
                self._slices[(namespace, service)].append(endpoint_slice)
        self._grants: dict[str, list[ReferenceGrant]] = defaultdict(list)
        for (namespace, _), grant in sorted(snapshot.reference_grants.items()):
            self._grants[namespace].append(grant)
        self.clusters: dict[str, list[tuple[str, int]]] = {}
        # Clusters that do not speak HTTP/1.1: cluster name -> ir.Cluster protocol.
        self.cluster_protocols: dict[str, str] = {}
        # Every Service port a backendRef reached: cluster -> (namespace, service, port name).
        self.cluster_ports: dict[str, tuple[str, str, str | None]] = {}
        # Clusters reached with TLS (a BackendTLSPolicy targets their port).
        self.cluster_tls: dict[str, UpstreamTLSSettings] = {}
        # What resolve() answered with a cluster, by everything but the field path (which
        # only words the conditions of failures): rules of a route, and routes, often
        # name the same Service port. Entries go with the Services or grants they read.
        self._resolved: dict[tuple[BackendTarget, str, str, bool], str] = {}

    def forget_services(self, snapshot: Snapshot, services: set[tuple[str, str]]) -> None:
        """Read Services from ``snapshot`` from now on, and drop what was resolved for
        ``services`` (they changed): the routes using them are resolved again."""
        self._snapshot = snapshot
        self._forget_resolved(lambda target: (target.namespace, target.name) in services)
        for cluster in [name for name in self.clusters if self._service_of(name) in services]:
            del self.clusters[cluster]
        for cluster in [n for n in self.cluster_protocols if self._service_of(n) in services]:
            del self.cluster_protocols[cluster]
        for base in [n for n, port in self.cluster_ports.items() if port[:2] in services]:
            del self.cluster_ports[base]

    def refresh_grants(self, snapshot: Snapshot, namespaces: set[str]) -> None:
        """Read Services and the ReferenceGrants of ``namespaces`` (they changed) from
        ``snapshot`` from now on (graph/incremental.py)."""
        self._snapshot = snapshot
        self._forget_resolved(lambda target: target.namespace in namespaces)
        for namespace in namespaces:
            self._grants.pop(namespace, None)
        for (namespace, _), grant in sorted(snapshot.reference_grants.items()):
            if namespace in namespaces:
                self._grants[namespace].append(grant)

    def _forget_resolved(self, reads: Callable[[BackendTarget], bool]) -> None:
        for key in [key for key in self._resolved if reads(key[0])]:
            del self._resolved[key]

    def _service_of(self, cluster: str) -> tuple[str, str] | None:
        # "ns/svc:port", or with the /h2c or /h2 suffix of its protocol.
        port = self.cluster_ports.get(
            cluster.rsplit("/", 1)[0] if cluster.count("/") > 1 else cluster
        )
        return None if port is None else (port[0], port[1])

    def refresh_endpoints(
        self, snapshot: Snapshot, services: set[tuple[str, str]]
    ) -> dict[str, list[tuple[str, int]]]:
        """Take the EndpointSlices of ``services`` from ``snapshot`` (only theirs changed
        since this resolver's Snapshot) and recompute the endpoints of the clusters of
        those services it resolved; returns the refreshed clusters (graph/incremental)."""
        self._snapshot = snapshot
        for key in services:
            self._slices.pop(key, None)
        for (namespace, _), endpoint_slice in sorted(snapshot.endpoint_slices.items()):
            service = endpoint_slice.service_name
            if service and (namespace, service) in services:
                self._slices[(namespace, service)].append(endpoint_slice)
        refreshed = {}
        for cluster in self.clusters:
            owner = self._service_of(cluster)
            if owner is not None and owner in services:
                port = self.cluster_ports[
                    cluster.rsplit("/", 1)[0] if cluster.count("/") > 1 else cluster
                ]
                refreshed[cluster] = self.clusters[cluster] = self._endpoints(*port)
        return refreshed

    def grant_allows(
        self, *, from_group: str, from_kind: str, from_namespace: str, target: BackendTarget
    ) -> bool:
        for grant in self._grants.get(target.namespace, ()):
            if not any(
                f.group == from_group and f.kind == from_kind and f.namespace == from_namespace
                for f in grant.spec.from_
            ):
                continue
            if any(
                t.group == target.group
                and t.kind == target.kind
                and (t.name is None or t.name == target.name)
                for t in grant.spec.to
            ):
                return True
        return False

    def resolve(
        self,
        target: BackendTarget,
        *,
        field: str,
        from_kind: str,
        from_namespace: str,
        check_app_protocol: bool = True,
    ) -> tuple[str | None, Condition | None]:
        """(cluster name, None) or (None, ResolvedRefs=False condition).

        ``check_app_protocol=False`` for routes that forward opaque streams or datagrams
        (TCPRoute, TLSRoute, UDPRoute): the Service port's appProtocol and BackendTLSPolicies
        (which only apply to HTTP and gRPC here) do not matter.
        """
        key = (target, from_kind, from_namespace, check_app_protocol)
        found = self._resolved.get(key)
        if found is not None:
            return found, None
        cluster, failed = self._resolve(
            target, field, from_kind, from_namespace, check_app_protocol
        )
        if cluster is not None:
            self._resolved[key] = cluster
        return cluster, failed

    def _resolve(
        self,
        target: BackendTarget,
        field: str,
        from_kind: str,
        from_namespace: str,
        check_app_protocol: bool,
    ) -> tuple[str | None, Condition | None]:
        if target.group != "" or target.kind != "Service":
            kind = f"{target.group}/{target.kind}" if target.group else target.kind
            return None, c.route_unresolved_refs(
                c.ROUTE_RESOLVED_REFS_INVALID_KIND,
                f"{field}: kind {kind} is not supported; use a core Service",
            )
        if target.namespace != from_namespace and not self.grant_allows(
            from_group="gateway.networking.k8s.io",
            from_kind=from_kind,
            from_namespace=from_namespace,
            target=target,
        ):
            return None, c.route_unresolved_refs(
                c.ROUTE_RESOLVED_REFS_REF_NOT_PERMITTED,
                f"{field}: Service {_shown(target)} is in another namespace and no ReferenceGrant "
                f"in {target.namespace} allows {from_kind}s from {from_namespace} to use it",
            )
        service = self._snapshot.services.get((target.namespace, target.name))
        if service is None:
            return None, c.route_unresolved_refs(
                c.ROUTE_RESOLVED_REFS_BACKEND_NOT_FOUND,
                f"{field}: Service {_shown(target)} not found",
            )
        if service.spec.type == "ExternalName":
            return None, c.route_unresolved_refs(
                c.ROUTE_RESOLVED_REFS_BACKEND_NOT_FOUND,
                f"{field}: Service {_shown(target)} is of type ExternalName, which is not "
                "supported",
            )
        for port in service.spec.ports:
            if port.port == target.port:
                break
        else:
            return None, c.route_unresolved_refs(
                c.ROUTE_RESOLVED_REFS_BACKEND_NOT_FOUND,
                f"{field}: Service {_shown(target)} has no port {target.port}",
            )
        cluster = f"{target.namespace}/{target.name}:{port.port}"
        self.cluster_ports[cluster] = (target.namespace, target.name, port.name)
        policy = (
            self._tls_index.for_port(target.namespace, target.name, port.name)
            if self._tls_index is not None
            else None
        )
        app_protocol = (port.app_protocol or "").lower()
        if from_kind == "GRPCRoute":
            unsupported = _NOT_FOR_GRPC.get(app_protocol)
            if policy is not None and app_protocol == "https":
                unsupported = None  # HTTP/2 over TLS, as the policy asks
        else:
            unsupported = _UNSUPPORTED_APP_PROTOCOLS.get(app_protocol)
            if policy is not None and app_protocol == "https":
                unsupported = None
        if unsupported is not None and check_app_protocol:
            return None, c.route_unresolved_refs(
                c.ROUTE_RESOLVED_REFS_UNSUPPORTED_PROTOCOL,
                f"{field}: Service {_shown(target)} port {port.port} has appProtocol "
                f"{port.app_protocol}: {unsupported}",
            )
        if policy is not None and check_app_protocol:
            if policy.settings is None:
                return None, c.route_unresolved_refs(
                    c.ROUTE_RESOLVED_REFS_INVALID_BACKEND_TLS_POLICY,
                    f"{field}: Service {_shown(target)} port {port.port} is targeted by "
                    "BackendTLSPolicy "
                    f"{policy.obj.namespace}/{policy.obj.name}, which cannot be used "
                    f"({policy.accepted.reason}); requests to it get 500",
                )
            if app_protocol in _CLEARTEXT_H2_APP_PROTOCOLS:
                return None, c.route_unresolved_refs(
                    c.ROUTE_RESOLVED_REFS_UNSUPPORTED_PROTOCOL,
                    f"{field}: Service {_shown(target)} port {port.port} has appProtocol "
                    f"{port.app_protocol} (cleartext HTTP/2), which contradicts the "
                    f"BackendTLSPolicy {policy.obj.namespace}/{policy.obj.name} targeting it",
                )
            if from_kind == "GRPCRoute" or app_protocol in _H2C_APP_PROTOCOLS:
                # HTTP/2 over TLS (ALPN h2): a cluster of its own, apart from HTTP/1.1.
                cluster += "/h2"
                self.cluster_protocols[cluster] = "h2"
            self.cluster_tls[cluster] = policy.settings
        elif from_kind == "GRPCRoute" and app_protocol not in _H2C_APP_PROTOCOLS:
            # h2c by inference: a cluster of its own, so that an HTTPRoute to the same
            # port keeps speaking HTTP/1.1 to it.
            cluster += "/h2c"
            self.cluster_protocols[cluster] = "h2c"
        elif app_protocol in _H2C_APP_PROTOCOLS:
            self.cluster_protocols[cluster] = "h2c"
        if cluster not in self.clusters:
            self.clusters[cluster] = self._endpoints(target.namespace, target.name, port.name)
        return cluster, None

    def _endpoints(
        self, namespace: str, service: str, port_name: str | None
    ) -> list[tuple[str, int]]:
        """Ready endpoints of a Service port: the union of all its EndpointSlices."""
        found: dict[tuple[str, int], None] = {}  # ordered set
        for endpoint_slice in self._slices.get((namespace, service), ()):
            target_port = next(
                (
                    p.port
                    for p in endpoint_slice.ports or ()
                    if (p.name or "") == (port_name or "") and p.port is not None
                ),
                None,
            )
            if target_port is None:
                continue
            for endpoint in endpoint_slice.endpoints:
                # An unset `ready` is to be read as ready (discovery.k8s.io/v1).
                if endpoint.conditions.ready is False:
                    continue
                for address in endpoint.addresses:
                    found[(address, target_port)] = None
        return list(found)


def _shown(target: BackendTarget) -> str:
    """How a condition message names the Service (formatted only for a message)."""
    return f"{target.namespace}/{target.name}"
