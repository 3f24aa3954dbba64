"""graph.release: a released Graph is freed by reference counting alone (no cycles left)."""

from __future__ import annotations

import gc
import ipaddress
import weakref
from pathlib import Path

import pytest

from tests.golden.tls_fixtures import materialize
from turnout import DEFAULT_CONTROLLER_NAME, graph
from turnout.graph.release import release
from turnout.runtime import AddressAllocator, requested_addresses
from turnout.sources.files import FileSource

GOLDEN = Path(__file__).parent.parent / "golden" / "status"
# Scenarios with every kind of node: Gateways, ListenerSets, HTTPRoutes and GRPCRoutes
# attached to several listeners, BackendTLSPolicies with ancestors.
CASES = [
    "attached-routes-counting",
    "listenerset-routing",
    "listenerset-hostname-conflict",
    "grpcroute-httproute-hostname-conflict",
    "backendtlspolicy-conflicts-and-ancestors",
    "route-two-parent-refs",
]


@pytest.mark.parametrize("case", CASES)
def test_released_graph_has_no_cycles_left(case: str, tmp_path: Path) -> None:
    snapshot = FileSource([materialize(GOLDEN / case / "in.yaml", tmp_path)]).load().snapshot
    keys = graph.gateways_of_our_classes(snapshot, DEFAULT_CONTROLLER_NAME)
    allocator = AddressAllocator(ipaddress.ip_network("127.0.0.0/24"))
    assignment = allocator.assign(requested_addresses(snapshot, keys))
    was_enabled = gc.isenabled()
    gc.disable()  # only reference counting may free the nodes
    try:
        built = graph.build(
            snapshot, controller_name=DEFAULT_CONTROLLER_NAME, addresses=assignment.addresses
        )
        nodes = [
            *built.gateways.values(),
            *(ln for gw in built.gateways.values() for ln in gw.all_listeners),
            *built.listener_sets.values(),
            *built.routes.values(),
            *built.grpc_routes.values(),
            *built.backend_tls_policies.values(),
        ]
        assert any(gw.listeners for gw in built.gateways.values())  # cycles to break
        refs = [weakref.ref(node) for node in nodes]
        del nodes
        release(built)
        del built
        alive = [ref() for ref in refs if ref() is not None]
        assert alive == []
    finally:
        if was_enabled:
            gc.enable()
