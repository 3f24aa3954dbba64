"""Letting go of a Graph: break its reference cycles so it is freed at once.

A Graph is full of reference cycles by design (a listener points to its Gateway and
the Gateway to its listeners; a listener lists the routes attached to it and each
route's parents point back to the listeners). Garbage with cycles is only reclaimed
by a full collection of the cyclic garbage collector, which at thousands of routes
walks about a million objects and stalls the event loop for a second or more; until
then every replaced Graph stays in memory (~12 MB each at 5,000 routes). The runtime
calls ``release`` on the Graph a reload replaced, when nothing reads it any more;
reference counting then frees it immediately. A cycle missed here (a node type added
later) costs memory until the next full collection, never correctness.
"""

from __future__ import annotations

from turnout.graph.model import Graph


def release_replaced(previous: Graph, current: Graph) -> None:
    """Release ``previous`` once ``current`` replaced it, unless ``current`` is a patch
    of it (graph/incremental.py): then they share their Gateway and listener nodes,
    and the route nodes the patch replaced have no cycle left through a listener."""
    if previous.gateways is not current.gateways:
        release(previous)


def release(graph: Graph) -> None:
    """Empty the containers that close cycles. ``graph`` must not be read afterwards."""
    for routes in (graph.routes, graph.grpc_routes):
        for route in routes.values():
            route.parents.clear()  # ParentStatus -> listeners / Gateway
    for listener_set in graph.listener_sets.values():
        listener_set.listeners.clear()
    for gateway in graph.gateways.values():
        for listener in gateway.all_listeners:
            listener.routes.clear()  # RouteNode -> parents -> this listener
        for listener_set in gateway.listener_sets:
            listener_set.listeners.clear()
        gateway.listener_sets.clear()
        gateway.listeners.clear()  # ListenerNode.gateway -> this Gateway
    for policy in graph.backend_tls_policies.values():
        policy.ancestors.clear()
