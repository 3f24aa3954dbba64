"""Graph nodes: the Snapshot's objects wrapped with what the spec says they mean.

Each node keeps its source object untouched and records verdicts (accepted, conflicts,
attachments, resolved backends) plus the conditions that explain them. Nodes are built
once per Snapshot by `turnout.graph.build` and read by status and IR builders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from turnout.graph.tls import ClientValidation, ListenerCertificate
from turnout.resources import (
    Gateway,
    GatewayClass,
    GRPCRoute,
    HTTPRoute,
    ListenerSet,
    TCPRoute,
    TLSRoute,
    UDPRoute,
)
from turnout.resources.gateway import Listener
from turnout.resources.grpcroute import GRPCRouteRule
from turnout.resources.httproute import HTTPRouteRule
from turnout.resources.meta import ParentReference
from turnout.status.conditions import Condition

if TYPE_CHECKING:  # backendtls builds on these nodes
    from turnout.graph.backendtls import BackendTLSPolicyNode, UpstreamTLSSettings

Key = tuple[str, str]  # (namespace, name)
Route = HTTPRoute | GRPCRoute
"""The route kinds whose rules the graph resolves and the IR compiles."""


@dataclass
class GatewayClassNode:
    obj: GatewayClass
    accepted: bool
    conditions: list[Condition]


@dataclass(eq=False)
class ListenerNode:
    gateway: GatewayNode
    spec: Listener
    supported_kinds: list[tuple[str, str]]  # (group, kind)
    accepted: bool = True
    conflicted: bool = False
    # Conditions other than Programmed, which depends on the data plane.
    conditions: list[Condition] = field(default_factory=list)
    attached_routes: int = 0
    # (route node, effective hostnames) of every Accepted route attached here.
    routes: list[tuple[RouteNode, list[str]]] = field(default_factory=list)
    # TCPRoutes, TLSRoutes and UDPRoutes attached here (same rules as ``routes``).
    l4_routes: list[tuple[L4RouteNode, list[str]]] = field(default_factory=list)
    # HTTPS and TLS Terminate listeners: the certificateRefs that resolved to key pairs.
    certificates: list[ListenerCertificate] = field(default_factory=list)
    # HTTPS listeners with spec.tls.frontend validation: what clients must present.
    client_validation: ClientValidation | None = None
    # Why an accepted listener still cannot be programmed (an HTTPS listener without a
    # usable certificate); it keeps counting attachedRoutes.
    not_programmable: str | None = None
    # Set for a listener entry of a ListenerSet attached to ``gateway``.
    listener_set: ListenerSetNode | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def namespace(self) -> str:
        """The namespace of the object that defines the listener (``Same`` refers to it)."""
        owner = self.listener_set if self.listener_set is not None else self.gateway
        return owner.namespace

    @property
    def ir_name(self) -> str:
        base = f"{self.gateway.namespace}/{self.gateway.name}"
        if self.listener_set is not None:
            # Listener names are unique per ListenerSet only (ListenerEntry.Name).
            ls = self.listener_set
            return f"{base}/listenerset/{ls.namespace}/{ls.name}/{self.spec.name}"
        return f"{base}/{self.spec.name}"

    @property
    def servable(self) -> bool:
        """Does this listener get a socket in the data plane?"""
        return (
            self.accepted
            and not self.conflicted
            and self.not_programmable is None
            and self.gateway.accepted
            and (self.listener_set is None or self.listener_set.accepted)
        )


class _NamespacedNode:
    """namespace, name and key of a node wrapping a namespaced object."""

    obj: Gateway | HTTPRoute | GRPCRoute | ListenerSet | L4Route

    @property
    def namespace(self) -> str:
        return self.obj.namespace

    @property
    def name(self) -> str:
        return self.obj.metadata.name

    @property
    def key(self) -> Key:
        return self.obj.key


@dataclass(eq=False)
class GatewayNode(_NamespacedNode):
    obj: Gateway
    gateway_class: GatewayClassNode
    address: str | None
    # Requested static addresses the Gateway does not get, each with the reason.
    unusable_addresses: tuple[str, ...] = ()
    listeners: list[ListenerNode] = field(default_factory=list)
    accepted: bool = False
    # The Accepted condition (Programmed is computed with data-plane feedback).
    conditions: list[Condition] = field(default_factory=list)
    # Set when requested addresses cannot be used: Programmed says so, whatever the
    # data plane reports.
    address_condition: Condition | None = None
    # spec.tls.backend.clientCertificateRef, when it resolved to a usable key pair.
    backend_client_certificate: ListenerCertificate | None = None
    # ListenerSets naming this Gateway as parent that it lets attach, in precedence order.
    listener_sets: list[ListenerSetNode] = field(default_factory=list)

    @property
    def all_listeners(self) -> list[ListenerNode]:
        """Its own listeners, then those of accepted ListenerSets, in precedence order
        (ListenerSetSpec.Listeners: the parent first, then ListenerSets by age, name)."""
        merged = list(self.listeners)
        for listener_set in self.listener_sets:
            if listener_set.accepted:
                merged.extend(listener_set.listeners)
        return merged

    @property
    def attached_listener_sets(self) -> int:
        return sum(1 for listener_set in self.listener_sets if listener_set.accepted)


@dataclass(eq=False)
class ListenerSetNode(_NamespacedNode):
    """A ListenerSet whose parent is one of our Gateways."""

    obj: ListenerSet
    gateway: GatewayNode
    listeners: list[ListenerNode] = field(default_factory=list)
    accepted: bool = False
    # The Accepted condition; Programmed is computed with data-plane feedback.
    conditions: list[Condition] = field(default_factory=list)
    # (reason, message) when Programmed is False whatever the data plane says
    # (NotAllowed, ParentNotAccepted, ListenersNotValid).
    not_programmed: tuple[str, str] | None = None


@dataclass
class ResolvedBackend:
    """One backendRef of a rule after resolution."""

    weight: int
    cluster: str | None  # "ns/name:port" when valid
    error: Condition | None = None  # ResolvedRefs=False explanation when invalid


@dataclass
class ResolvedRule:
    index: int
    spec: HTTPRouteRule | GRPCRouteRule
    backends: list[ResolvedBackend]
    # backendRef-level filter lists are in spec; mirrors resolved to clusters here.
    mirror_clusters: list[str | None] = field(default_factory=list)
    backend_mirror_clusters: list[list[str | None]] = field(default_factory=list)
    # Set when an ExtensionRef filter cannot be resolved: requests get 500.
    unresolved_extension: bool = False


@dataclass
class ParentStatus:
    """One entry of route.status.parents, for a parentRef we are responsible for."""

    ref: ParentReference
    gateway: GatewayNode
    conditions: list[Condition]
    # Set when the parentRef names a ListenerSet (``gateway`` is then its parent).
    listener_set: ListenerSetNode | None = None
    # listeners the route is attached to, with the hostnames it serves there
    listeners: list[tuple[ListenerNode, list[str]]] = field(default_factory=list)
    # Set when routes of the other kind took some of its listeners (GEP-1016).
    cross_loss: CrossLoss | None = None

    @property
    def accepted(self) -> bool:
        return any(c.type == "Accepted" and c.status == "True" for c in self.conditions)


@dataclass(eq=False)
class CrossLoss:
    """What an HTTPRoute's or GRPCRoute's parent entry lost to routes of the other kind
    sharing a hostname on a listener (GEP-1016, graph/crossserving.py), and what it was
    before: a patch re-decides the loss from it when the routes around it change."""

    # The parent's listeners and conditions before the loss.
    offered: list[tuple[ListenerNode, list[str]]]
    conditions: list[Condition]
    # id(listener) -> the route that took it.
    rivals: dict[int, RouteNode]


@dataclass(eq=False)
class RouteNode(_NamespacedNode):
    obj: Route
    rules: list[ResolvedRule] = field(default_factory=list)
    # Conditions that apply to every parent (ResolvedRefs, PartiallyInvalid, ...).
    common_conditions: list[Condition] = field(default_factory=list)
    # Set when no rule is valid: the route is not Accepted on any parent.
    invalid: Condition | None = None
    parents: list[ParentStatus] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.obj.kind


L4Route = TCPRoute | TLSRoute | UDPRoute


@dataclass(eq=False)
class L4RouteNode(_NamespacedNode):
    """A TCPRoute, TLSRoute or UDPRoute: one rule of weighted backends, no matching."""

    obj: L4Route
    # The backendRefs of its rule (the only one turnout serves).
    backends: list[ResolvedBackend] = field(default_factory=list)
    common_conditions: list[Condition] = field(default_factory=list)
    invalid: Condition | None = None
    parents: list[ParentStatus] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def age_key(self) -> tuple[str, str, str]:
        """Conflict order between routes of a listener: oldest, then ``{namespace}/{name}``."""
        return (self.obj.metadata.creation_timestamp or "", self.namespace, self.name)


@dataclass
class Graph:
    controller_name: str
    gateway_classes: dict[str, GatewayClassNode]
    gateways: dict[Key, GatewayNode]
    routes: dict[Key, RouteNode]  # HTTPRoutes
    listener_sets: dict[Key, ListenerSetNode]
    # cluster name -> ready endpoints [(address, port)]
    clusters: dict[str, list[tuple[str, int]]]
    grpc_routes: dict[Key, RouteNode] = field(default_factory=dict)
    # cluster name -> upstream protocol, for clusters that do not speak HTTP/1.1
    cluster_protocols: dict[str, str] = field(default_factory=dict)
    backend_tls_policies: dict[Key, BackendTLSPolicyNode] = field(default_factory=dict)
    # cluster name -> TLS to originate (a BackendTLSPolicy targets its Service port)
    cluster_tls: dict[str, UpstreamTLSSettings] = field(default_factory=dict)
    # (kind, namespace, name) -> TCPRoute, TLSRoute and UDPRoute nodes
    l4_routes: dict[tuple[str, str, str], L4RouteNode] = field(default_factory=dict)
