"""Leak tests of configuration swaps: ``DataPlane.apply`` again and again, with traffic.

A gateway whose routes are edited all day applies a new configuration every few
seconds, for months. Each apply here alternates between two shapes -- a listener added
then removed, a TCP listener likewise, routes and clusters that exist in one cycle only
(unique names, so no cache can be hit twice), and the endpoint of a live Service moved
from one real backend to the other -- and sends a real request through the data plane
after each, so that endpoint pools hold live keep-alive connections when the next apply
retires them. After a warm-up, the memory still allocated (tests/retained.py) and the
file descriptors open must not grow with the count of applies: replaced tables,
clusters and pools are released, sockets of removed listeners closed, and connections to
endpoints no configuration uses any more closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from turnout import ir
from turnout.dataplane import DataPlane

from ..retained import assert_no_leak, open_fds, retained_async
from .helpers import config, free_port, listener, request, rule, to

pytestmark = pytest.mark.timeout(60)

ADDR = "127.0.0.1"
WARMUP = 100
APPLIES = 300
# Bytes APPLIES applies may retain: sockets and event loops resize their tables now and
# then (0.2-4.5 KiB measured); a string kept per apply would be ~18 KiB, a compiled
# route table KiBs each.
FLOOR = 12 * 1024
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Backend(asyncio.Protocol):
    """Answers every request head with OK, keeping the connection open; counts them."""

    open = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        Backend.open += 1

    def data_received(self, data: bytes) -> None:
        for _ in range(data.count(b"\r\n\r\n")):
            self.transport.write(OK)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        Backend.open -= 1


@pytest.fixture
async def backends() -> AsyncIterator[list[int]]:
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(Backend, ADDR, 0) for _ in range(2)]
    yield [server.sockets[0].getsockname()[1] for server in servers]
    for server in servers:
        server.close()


def _config(cycle: int, ports: tuple[int, int, int], backends: list[int]) -> ir.Config:
    """Cycle ``cycle``'s configuration: even and odd cycles differ in every part."""
    http, extra_http, tcp = ports
    routes = (
        rule("live", match=_prefix("/live"), backends=(to("live"),)),
        rule(f"r{cycle}", match=_prefix(f"/r{cycle}"), backends=(to(f"gone-{cycle}"),)),
    )
    vhosts = (ir.VirtualHost(hostname="*", routes=routes),)
    listeners = [listener(http, vhosts, name="default/gw/http")]
    clusters = {
        "live": [(ADDR, backends[cycle % 2])],  # the endpoint moves between the backends
        f"gone-{cycle}": [(f"10.255.{cycle // 256 % 256}.{cycle % 256}", 8000 + cycle)],
    }
    if cycle % 2:
        listeners.append(listener(extra_http, vhosts, name="default/gw/extra"))
        tcp_route = ir.L4Route(name="tcproute/default/t", backends=(ir.L4Backend(1, "live"),))
        listeners.append(
            ir.Listener(
                name="default/gw/tcp",
                address=ADDR,
                port=tcp,
                spec_port=9000,
                protocol="TCP",
                l4_route=tcp_route,
            )
        )
    return config(tuple(listeners), clusters, version=cycle + 1)


def _prefix(value: str) -> ir.RouteMatch:
    return ir.RouteMatch(path=ir.PathMatch(type="PathPrefix", value=value))


async def _settled_fds(baseline: int) -> int:
    """Open descriptors once closes in flight are done (bounded wait: closing a socket
    takes a turn or two of the loop, and the backend's side a turn more)."""
    fds = open_fds()
    for _ in range(200):
        if fds <= baseline:
            break
        await asyncio.sleep(0.01)
        fds = open_fds()
    return fds


async def test_configuration_swaps_release_what_they_replace(backends: list[int]) -> None:
    ports = (free_port(), free_port(), free_port())
    dataplane = DataPlane()
    cycle = 0

    async def step() -> None:
        nonlocal cycle
        results = await dataplane.apply(_config(cycle, ports, backends))
        assert set(results.values()) == {None}, results
        extra = ports[1] if cycle % 2 else ports[0]
        response = await request(ADDR, extra, "/live/x")
        assert response.status == 200, response
        cycle += 1

    try:
        for _ in range(4):  # every kind of object exists once before the baseline
            await step()
        fds = await _settled_fds(open_fds())
        growth = await retained_async("config swaps", step, warmup=WARMUP, steps=APPLIES)
        assert_no_leak(growth, floor=FLOOR)
        assert await _settled_fds(fds) <= fds
        # The pool of the backend no longer used was retired: its connection is closed.
        assert Backend.open <= 1
    finally:
        await dataplane.close(drain_timeout=1.0)
