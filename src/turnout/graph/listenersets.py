"""ListenerSets (GEP-1713): listeners that other namespaces add to a Gateway.

A ListenerSet attaches to its parent Gateway only if the Gateway's
``spec.allowedListeners.namespaces`` selects the ListenerSet's namespace (the default,
``None``, allows none). An attached ListenerSet's entries join the Gateway's listener
list in precedence order (ListenerSetSpec.Listeners): the Gateway's own listeners
first, then ListenerSets oldest first, then by "namespace/name". Unlike listeners
within one Gateway (all indistinct ones are rejected, GatewaySpec.Listeners), an entry
that clashes with a listener earlier in that order is the one rejected, with
Accepted=False, Programmed=False and Conflicted=True and the reason HostnameConflict or
ProtocolConflict; the earlier listener keeps serving (conformance:
ListenerSetHostnameConflict, ListenerSetProtocolConflict).

A ListenerSet is Accepted when at least one of its entries is valid (accepted, refs
resolved); ``Same`` in an entry's allowedRoutes means the ListenerSet's namespace, and
its certificateRefs need ReferenceGrants ``from`` kind ListenerSet. Routes attach to a
ListenerSet only through a parentRef of kind ListenerSet: a parentRef to the Gateway
covers the Gateway's own listeners only (conformance: ListenerSetHTTPRouting).
"""

from __future__ import annotations

from collections.abc import Mapping

from turnout.graph.gateways import (
    GATEWAY_GROUP,
    PORT_FAMILY,
    PROTOCOL_ROUTE_KINDS,
    describe_invalid,
    listener_node,
    listener_valid,
)
from turnout.graph.model import GatewayNode, Key, ListenerNode, ListenerSetNode
from turnout.resources import ListenerSet
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c

# A listener's claim on a port: (port, is UDP) -> [(family, hostname, listener name)].
_Claims = dict[tuple[int, bool], list[tuple[str, str, str]]]


def build_listener_sets(
    snapshot: Snapshot, gateways: Mapping[Key, GatewayNode]
) -> dict[Key, ListenerSetNode]:
    """Nodes for the ListenerSets whose parent is one of our Gateways."""
    nodes: dict[Key, ListenerSetNode] = {}
    claims: dict[Key, _Claims] = {}
    for listener_set in sorted(snapshot.listener_sets.values(), key=_precedence):
        ref = listener_set.spec.parent_ref
        if ref.group != GATEWAY_GROUP or ref.kind != "Gateway":
            continue  # no other parent kind exists; nothing of ours to report on
        gateway = gateways.get(listener_set.parent_key)
        if gateway is None:
            continue  # not a Gateway of ours: its controller writes the status
        node = ListenerSetNode(listener_set, gateway)
        if gateway.key not in claims:
            claims[gateway.key] = _own_claims(gateway)
        _accept(node, snapshot, claims[gateway.key])
        gateway.listener_sets.append(node)
        nodes[listener_set.key] = node
    return nodes


def _precedence(listener_set: ListenerSet) -> tuple[str, str, str]:
    age = listener_set.metadata.creation_timestamp or "~"  # unknown age sorts last
    return (age, listener_set.namespace, listener_set.name)


def _accept(node: ListenerSetNode, snapshot: Snapshot, claims: _Claims) -> None:
    gateway = node.gateway
    if not _allowed(gateway, node, snapshot):
        message = (
            f"Gateway {gateway.namespace}/{gateway.name} does not allow ListenerSets from "
            f"namespace {node.namespace} (spec.allowedListeners)"
        )
        _reject(node, c.LISTENER_SET_ACCEPTED_NOT_ALLOWED, message)
        return
    if not gateway.accepted:
        message = f"Gateway {gateway.namespace}/{gateway.name} is not accepted"
        _reject(node, c.LISTENER_SET_ACCEPTED_PARENT_NOT_ACCEPTED, message)
        return
    node.listeners = [
        listener_node(gateway, entry, snapshot, node) for entry in node.obj.spec.listeners
    ]
    taken = _mark_conflicts(node.listeners, claims)
    invalid = [ln for ln in node.listeners if not listener_valid(ln)]
    if len(invalid) == len(node.listeners):
        message = "no valid listener: " + describe_invalid(invalid)
        _reject(node, c.LISTENER_SET_ACCEPTED_LISTENERS_NOT_VALID, message)
        return
    for key, claim in taken:  # only an attached ListenerSet holds on to its ports
        claims.setdefault(key, []).append(claim)
    node.accepted = True
    if invalid:
        message = "some listeners are not valid: " + describe_invalid(invalid)
        node.conditions = [c.listener_set_accepted_listeners_not_valid(message)]
    else:
        node.conditions = [c.listener_set_accepted()]


def _reject(node: ListenerSetNode, reason: str, message: str) -> None:
    node.accepted = False
    node.conditions = [c.listener_set_not_accepted(reason, message)]
    node.not_programmed = (reason, message)


def _allowed(gateway: GatewayNode, node: ListenerSetNode, snapshot: Snapshot) -> bool:
    allowed = gateway.obj.spec.allowed_listeners
    if allowed is None:
        return False
    namespaces = allowed.namespaces
    if namespaces.from_ == "All":
        return True
    if namespaces.from_ == "Same":
        return node.namespace == gateway.namespace
    if namespaces.from_ == "Selector" and namespaces.selector is not None:
        return namespaces.selector.matches(snapshot.namespace_labels(node.namespace))
    return False  # None, or Selector without a selector


def _own_claims(gateway: GatewayNode) -> _Claims:
    """The ports the Gateway's own (non-conflicted) listeners hold."""
    claims: _Claims = {}
    for listener in gateway.listeners:
        if listener.conflicted or listener.spec.protocol not in PROTOCOL_ROUTE_KINDS:
            continue
        key, claim = _claim(listener)
        claims.setdefault(key, []).append(claim)
    return claims


def _claim(listener: ListenerNode) -> tuple[tuple[int, bool], tuple[str, str, str]]:
    spec = listener.spec
    family = PORT_FAMILY[spec.protocol]
    return (spec.port, spec.protocol == "UDP"), (family, spec.hostname or "", spec.name)


def _mark_conflicts(
    listeners: list[ListenerNode], claims: _Claims
) -> list[tuple[tuple[int, bool], tuple[str, str, str]]]:
    """Conflict conditions for a ListenerSet's entries; returns the claims they make.

    Each entry is checked against every listener before it in precedence order: the
    Gateway's, earlier ListenerSets', and earlier entries of its own set.
    """
    taken: list[tuple[tuple[int, bool], tuple[str, str, str]]] = []
    for listener in listeners:
        if listener.spec.protocol not in PROTOCOL_ROUTE_KINDS:
            continue  # UnsupportedProtocol already; it claims nothing
        key, claim = _claim(listener)
        earlier = claims.get(key, []) + [held for k, held in taken if k == key]
        conflict = _conflict(claim, earlier, listener.spec.port)
        if conflict is None:
            if listener.accepted:
                listener.conditions.insert(0, c.listener_accepted())
            listener.conditions.append(c.listener_no_conflicts())
            taken.append((key, claim))
            continue
        reason, message = conflict
        if listener.accepted:
            listener.conditions.insert(0, c.listener_not_accepted_conflicted(reason, message))
        listener.accepted = False
        listener.conflicted = True
        listener.conditions.append(c.listener_conflicted(reason, message))
    return taken


def _conflict(
    claim: tuple[str, str, str], earlier: list[tuple[str, str, str]], port: int
) -> tuple[str, str] | None:
    family, hostname, _ = claim
    for other_family, other_hostname, other_name in earlier:
        if other_family != family:
            return (
                c.LISTENER_CONFLICTED_PROTOCOL,
                f"port {port} is already served by listener {other_name} with a protocol "
                "that cannot share it",
            )
        if other_hostname == hostname:
            shown = hostname or "(any hostname)"
            return (
                c.LISTENER_CONFLICTED_HOSTNAME,
                f"listener {other_name} already uses port {port} and hostname {shown}",
            )
    return None
