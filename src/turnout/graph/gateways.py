"""GatewayClasses, Gateways and their listeners: acceptance, supported kinds, conflicts.

Listener rules follow apis/v1/gateway_types.go ("Distinct Listeners", "Handling
indistinct Listeners"): listeners sharing a port must differ by hostname (HTTP, HTTPS,
TLS) or not share the port at all (TCP, UDP); indistinct listeners are all rejected,
none is picked as the winner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from turnout.graph import tls
from turnout.graph.gatewaytls import client_validation_problems, gateway_tls_conditions
from turnout.graph.model import GatewayClassNode, GatewayNode, Key, ListenerNode, ListenerSetNode
from turnout.resources import Gateway
from turnout.resources.gateway import GatewaySpecAddress, Listener
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c
from turnout.status.conditions import Condition

GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTPROUTE_KIND = (GATEWAY_GROUP, "HTTPRoute")
GRPCROUTE_KIND = (GATEWAY_GROUP, "GRPCRoute")
TLSROUTE_KIND = (GATEWAY_GROUP, "TLSRoute")
TCPROUTE_KIND = (GATEWAY_GROUP, "TCPRoute")
UDPROUTE_KIND = (GATEWAY_GROUP, "UDPRoute")

# Route kinds each protocol can carry, in the order reported in supportedKinds (the
# default when allowedRoutes.kinds is empty). Only protocols the data plane serves are
# listed; the others get UnsupportedProtocol. GRPCRoute rides on HTTP (h2c with prior
# knowledge) and HTTPS (h2 by ALPN) listeners, as grpcroute_types.go requires; TLS, TCP
# and UDP listeners carry their own route kind.
PROTOCOL_ROUTE_KINDS: dict[str, list[tuple[str, str]]] = {
    "HTTP": [HTTPROUTE_KIND, GRPCROUTE_KIND],
    "HTTPS": [HTTPROUTE_KIND, GRPCROUTE_KIND],
    # TLS listeners take TLSRoutes only: conformance (TLSRouteListenerPassthroughSupportedKinds)
    # expects a TCPRoute in allowedRoutes.kinds of a TLS listener to be InvalidRouteKinds.
    "TLS": [TLSROUTE_KIND],
    "TCP": [TCPROUTE_KIND],
    "UDP": [UDPROUTE_KIND],
}
# Listeners on one port must share a family to be served by one socket. HTTPS and TLS
# would both be distinct by hostname per the spec, but turnout serves them from
# different sockets (HTTP after termination vs. SNI peeking), so they cannot share a
# port; TLS Terminate and Passthrough listeners can (TLSRouteModeMixed).
PORT_FAMILY = {"HTTP": "http", "HTTPS": "https", "TLS": "tls", "TCP": "tcp", "UDP": "udp"}
# Families whose listeners are distinct by port only (no hostname): two on one port
# always conflict (GatewaySpec.Listeners, "Distinct Listeners").
_PORT_ONLY_FAMILIES = ("tcp", "udp")


def build_gateway_classes(snapshot: Snapshot, controller_name: str) -> dict[str, GatewayClassNode]:
    """Nodes for the classes whose controllerName is ours; others are not our business."""
    nodes: dict[str, GatewayClassNode] = {}
    for name, gateway_class in sorted(snapshot.gateway_classes.items()):
        if gateway_class.spec.controller_name != controller_name:
            continue
        ref = gateway_class.spec.parameters_ref
        if ref is not None:
            accepted = c.class_invalid_parameters(
                f"spec.parametersRef: turnout takes no GatewayClass parameters "
                f"({ref.group}/{ref.kind} {ref.name} cannot be used)"
            )
            nodes[name] = GatewayClassNode(
                gateway_class, False, [accepted, c.class_supported_version()]
            )
        else:
            nodes[name] = GatewayClassNode(
                gateway_class, True, [c.class_accepted(), c.class_supported_version()]
            )
    return nodes


def build_gateways(
    snapshot: Snapshot,
    classes: Mapping[str, GatewayClassNode],
    addresses: Mapping[Key, str | None],
    unusable_addresses: Mapping[Key, tuple[str, ...]],
) -> dict[Key, GatewayNode]:
    nodes: dict[Key, GatewayNode] = {}
    for key, gateway in sorted(snapshot.gateways.items()):
        gateway_class = classes.get(gateway.spec.gateway_class_name)
        if gateway_class is None:
            continue  # not a class of ours (or no such class): leave it alone
        node = GatewayNode(
            gateway, gateway_class, addresses.get(key), unusable_addresses.get(key, ())
        )
        node.listeners = [
            listener_node(node, listener, snapshot) for listener in gateway.spec.listeners
        ]
        _mark_conflicts(node.listeners)
        gateway_conditions(node, snapshot)
        nodes[key] = node
    return nodes


def gateway_conditions(node: GatewayNode, snapshot: Snapshot) -> None:
    """The Gateway's conditions (and ``accepted``), from its listeners; computed again
    when a patch changed their ResolvedRefs (graph/rotation.py)."""
    _accept_gateway(node, node.obj)
    node.conditions.extend(gateway_tls_conditions(node, snapshot))


def listener_node(
    gateway: GatewayNode,
    listener: Listener,
    snapshot: Snapshot,
    listener_set: ListenerSetNode | None = None,
) -> ListenerNode:
    """A listener of ``gateway``, or a listener entry of ``listener_set`` attached to it."""
    node = _listener_node(gateway, listener, snapshot, listener_set)
    node.listener_set = listener_set
    return node


def _listener_node(
    gateway: GatewayNode,
    listener: Listener,
    snapshot: Snapshot,
    listener_set: ListenerSetNode | None,
) -> ListenerNode:
    protocol = listener.protocol
    route_kinds = PROTOCOL_ROUTE_KINDS.get(protocol)
    if route_kinds is None:
        return _not_accepted(
            gateway,
            listener,
            c.listener_unsupported_protocol(
                f"protocol {protocol} is not supported by turnout yet; "
                f"supported: {', '.join(PROTOCOL_ROUTE_KINDS)}"
            ),
        )
    path = f"spec.listeners[{listener.name}]"
    if protocol == "HTTPS" and listener.tls is not None and listener.tls.mode != "Terminate":
        # The CRD rejects this (CEL); a Snapshot built without that check still gets a
        # status that says why the listener is not served.
        return _not_accepted(
            gateway,
            listener,
            c.listener_unsupported_value(
                f"{path}.tls.mode: {listener.tls.mode} is not supported on an HTTPS "
                "listener; HTTPS listeners terminate TLS (mode Terminate)"
            ),
        )
    node = ListenerNode(gateway, listener, [])
    unresolved = _route_kinds(node, route_kinds)  # (reason, message) per problem
    # TLS listeners terminate only in mode Terminate; Passthrough ignores certificateRefs
    # (ListenerTLSConfig.CertificateRefs: "This field is ignored in Passthrough mode").
    terminates = protocol == "HTTPS" or (
        protocol == "TLS" and listener.tls is not None and listener.tls.mode == "Terminate"
    )
    if terminates:
        # A ListenerSet's certificateRefs are its own: granted to ListenerSets of its
        # namespace, not inherited from the Gateway (ListenerSet "ReferenceGrant Semantics").
        owner = listener_set if listener_set is not None else gateway
        node.certificates, problems = tls.resolve_certificate_refs(
            snapshot, owner.namespace, listener, path, from_kind=owner.obj.kind
        )
        unresolved += [(problem.reason, problem.message) for problem in problems]
        unresolved += client_validation_problems(node, snapshot)
        if not node.certificates:
            node.not_programmable = "the listener has no usable TLS certificate (see ResolvedRefs)"
    if unresolved:
        reason = unresolved[0][0]
        message = "; ".join(message for _, message in unresolved)
        node.conditions.append(c.listener_unresolved_refs(reason, message))
    else:
        node.conditions.append(c.listener_resolved_refs())
    return node


def _not_accepted(gateway: GatewayNode, listener: Listener, accepted: Condition) -> ListenerNode:
    node = ListenerNode(gateway, listener, supported_kinds=[], accepted=False)
    node.conditions.append(accepted)
    node.conditions.append(c.listener_resolved_refs())
    return node


def _route_kinds(node: ListenerNode, route_kinds: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Fill supportedKinds from allowedRoutes.kinds; a problem for kinds it cannot take."""
    requested = node.spec.allowed_routes.kinds
    if not requested:
        node.supported_kinds = list(route_kinds)
        return []
    invalid: list[str] = []
    for kind in requested:
        group_kind = (kind.group, kind.kind)
        if group_kind in route_kinds:
            if group_kind not in node.supported_kinds:
                node.supported_kinds.append(group_kind)
        else:
            invalid.append(f"{kind.group}/{kind.kind}" if kind.group else kind.kind)
    if not invalid:
        return []
    return [
        (
            c.LISTENER_RESOLVED_REFS_INVALID_ROUTE_KINDS,
            f"spec.listeners[{node.name}].allowedRoutes.kinds: "
            f"{', '.join(invalid)} cannot attach to a {node.spec.protocol} listener",
        )
    ]


def _mark_conflicts(listeners: list[ListenerNode]) -> None:
    # Only listeners of protocols we serve take part: "If an implementation does not
    # support TCP Protocol Listeners, then the previous rule does not apply, and the TCP
    # Listeners SHOULD NOT be accepted" (GatewaySpec.Listeners). Likewise an HTTPS or
    # TLS listener we cannot serve gets UnsupportedProtocol and must not take the port
    # away from an HTTP listener that could serve it.
    by_port: dict[tuple[int, bool], list[ListenerNode]] = defaultdict(list)
    for listener in listeners:
        if listener.spec.protocol in PROTOCOL_ROUTE_KINDS:
            is_udp = listener.spec.protocol == "UDP"
            by_port[(listener.spec.port, is_udp)].append(listener)
    conflicts: dict[int, tuple[str, str]] = {}  # id(listener) -> (reason, message)
    for (port, _), group in by_port.items():
        families = sorted({PORT_FAMILY[ln.spec.protocol] for ln in group})
        if len(families) > 1:
            protocols = ", ".join(sorted({ln.spec.protocol for ln in group}))
            for ln in group:
                conflicts[id(ln)] = (
                    c.LISTENER_CONFLICTED_PROTOCOL,
                    f"port {port} is shared by listeners of incompatible protocols ({protocols})",
                )
            continue
        by_hostname: dict[str, list[ListenerNode]] = defaultdict(list)
        for ln in group:
            by_hostname[ln.spec.hostname or ""].append(ln)
        for hostname, same in by_hostname.items():
            if len(same) < 2:
                continue
            names = ", ".join(ln.name for ln in same)
            if families[0] in _PORT_ONLY_FAMILIES:
                for ln in same:
                    conflicts[id(ln)] = (
                        c.LISTENER_CONFLICTED_PROTOCOL,
                        f"listeners {names} are all {ln.spec.protocol} on port {port}; "
                        f"{ln.spec.protocol} listeners are distinct by port only",
                    )
                continue
            shown = hostname or "(any hostname)"
            for ln in same:
                conflicts[id(ln)] = (
                    c.LISTENER_CONFLICTED_HOSTNAME,
                    f"listeners {names} all use port {port} and hostname {shown}",
                )
    for listener in listeners:
        conflict = conflicts.get(id(listener))
        if conflict is None:
            if listener.accepted:
                listener.conditions.insert(0, c.listener_accepted())
            listener.conditions.append(c.listener_no_conflicts())
            continue
        reason, message = conflict
        if listener.accepted:
            listener.conditions.insert(0, c.listener_not_accepted_conflicted(reason, message))
        listener.accepted = False
        listener.conflicted = True
        listener.conditions.append(c.listener_conflicted(reason, message))


def _accept_gateway(node: GatewayNode, gateway: Gateway) -> None:
    if not node.gateway_class.accepted:
        node.conditions = [
            c.gateway_not_accepted_invalid(
                f"GatewayClass {node.gateway_class.obj.metadata.name} is not accepted"
            )
        ]
        return
    infrastructure = gateway.spec.infrastructure
    if infrastructure is not None and infrastructure.parameters_ref is not None:
        ref = infrastructure.parameters_ref
        node.conditions = [
            c.gateway_invalid_parameters(
                f"spec.infrastructure.parametersRef: turnout takes no infrastructure "
                f"parameters ({ref.group}/{ref.kind} {ref.name} cannot be used)"
            )
        ]
        return
    unsupported = _unsupported_addresses(gateway.spec.addresses)
    if unsupported:
        node.conditions = [
            c.gateway_unsupported_address(
                f"{'; '.join(unsupported)}: turnout serves Gateways on IPAddress addresses "
                "only (with a value from its address pool, or none to have one assigned)"
            )
        ]
        return
    # Usable type, unusable value (outside the pool, taken by another Gateway): still
    # Accepted, but not Programmed as asked (GatewayStaticAddresses).
    if node.unusable_addresses:
        node.address_condition = c.gateway_address_not_usable(
            "spec.addresses: " + "; ".join(node.unusable_addresses)
        )
    invalid = [ln for ln in node.listeners if not listener_valid(ln)]
    if not any(ln.accepted for ln in node.listeners):
        node.conditions = [
            c.gateway_not_accepted_listeners_not_valid(
                "no valid listener: " + describe_invalid(invalid)
            )
        ]
        return
    node.accepted = True
    if invalid:
        node.conditions = [
            c.gateway_accepted_listeners_not_valid(
                "some listeners are not valid: " + describe_invalid(invalid)
            )
        ]
    else:
        node.conditions = [c.gateway_accepted()]


def _unsupported_addresses(addresses: list[GatewaySpecAddress]) -> list[str]:
    """Entries of a type turnout cannot serve (Hostname, NamedAddress, domain-prefixed).

    An IPAddress entry without a value asks for an assigned address (GatewaySpecAddress
    .Value: "an implementation SHOULD automatically assign an address matching the
    requested type"), which the allocator does.
    """
    return [
        f"spec.addresses[{i}]: type {address.type} is not supported"
        for i, address in enumerate(addresses)
        if address.type != "IPAddress"
    ]


def listener_valid(listener: ListenerNode) -> bool:
    return listener.accepted and all(
        cond.status == "True" for cond in listener.conditions if cond.type == c.RESOLVED_REFS
    )


def describe_invalid(listeners: list[ListenerNode]) -> str:
    parts = []
    for listener in listeners:
        reasons = sorted(
            {
                cond.reason
                for cond in listener.conditions
                if cond.type in (c.ACCEPTED, c.RESOLVED_REFS) and cond.status != "True"
            }
        )
        parts.append(f"{listener.name} ({', '.join(reasons)})")
    return "; ".join(parts)
