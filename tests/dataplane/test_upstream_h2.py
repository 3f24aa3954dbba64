"""h2c upstream pools (dataplane/upstream_h2.py) in front of real HTTP/2 backends.

A DataPlane serves HTTP/1.1 clients; the cluster's protocol is h2c, so every request
becomes a stream on one multiplexed connection per endpoint. Covers multiplexing,
reconnecting after the backend went away, GOAWAY (new streams go to a new connection,
the ones in flight finish), a backend that refuses streams, and connect failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import h2.errors
import pytest

from turnout import ir
from turnout.dataplane import DataPlane
from turnout.demo.h2echo import H2EchoProtocol

from .helpers import free_port, request, rule, simple_config, to

ADDR = "127.0.0.1"


def h2c_config(port: int, backend_port: int) -> ir.Config:
    base = simple_config(port, (rule(backends=(to("c"),)),), {"c": [(ADDR, backend_port)]})
    endpoints = base.clusters["c"].endpoints
    return ir.Config(
        version=1,
        gateways=base.gateways,
        clusters={"c": ir.Cluster("c", endpoints, protocol="h2c")},
    )


class GoawayAfterFirst(H2EchoProtocol):
    """Answers its first stream, then says GOAWAY (graceful) naming that stream."""

    def _respond(self, stream_id: int) -> None:
        super()._respond(stream_id)
        if self.transport is not None:
            self.conn.close_connection(last_stream_id=stream_id)
            self._flush()


class Refuser(H2EchoProtocol):
    """Refuses every other stream with REFUSED_STREAM (as a backend over its limit does)."""

    refused = 0

    def _answer(self, stream_id: int) -> None:
        if Refuser.refused % 2 == 0:
            Refuser.refused += 1
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            self.requests.pop(stream_id, None)
            self._flush()
            return
        Refuser.refused += 1
        super()._answer(stream_id)


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=0.5)


async def _backend(
    factory: type[H2EchoProtocol], port: int = 0, made: list[H2EchoProtocol] | None = None
) -> asyncio.Server:
    def make() -> H2EchoProtocol:
        protocol = factory(name="h2")
        if made is not None:
            made.append(protocol)
        return protocol

    return await asyncio.get_running_loop().create_server(make, ADDR, port)


async def test_requests_share_one_connection(dataplane: DataPlane) -> None:
    server = await _backend(H2EchoProtocol)
    port = free_port()
    await dataplane.apply(h2c_config(port, server.sockets[0].getsockname()[1]))
    try:
        responses = await asyncio.gather(*(request(ADDR, port, f"/n{i}") for i in range(30)))
        assert {r.status for r in responses} == {200}
        assert {r.json()["proto"] for r in responses} == {"HTTP/2"}
        assert len({r.json()["connection"] for r in responses}) == 1
        assert sorted(r.json()["stream"] for r in responses) == list(range(1, 61, 2))
    finally:
        server.close()


async def test_reconnects_after_the_backend_went_away(dataplane: DataPlane) -> None:
    backend_port = free_port()
    made: list[H2EchoProtocol] = []
    server = await _backend(H2EchoProtocol, backend_port, made)
    port = free_port()
    await dataplane.apply(h2c_config(port, backend_port))
    first = await request(ADDR, port, "/a")
    assert first.status == 200
    server.close()
    for protocol in made:
        if protocol.transport is not None:
            protocol.transport.abort()  # the backend restarts: its connections die
    await asyncio.sleep(0.05)
    server = await _backend(H2EchoProtocol, backend_port)
    try:
        second = await request(ADDR, port, "/b")
        assert second.status == 200
        assert second.json()["connection"] != first.json()["connection"]
    finally:
        server.close()


async def test_goaway_moves_new_streams_to_a_new_connection(dataplane: DataPlane) -> None:
    server = await _backend(GoawayAfterFirst)
    port = free_port()
    await dataplane.apply(h2c_config(port, server.sockets[0].getsockname()[1]))
    try:
        connections = []
        for i in range(3):
            response = await request(ADDR, port, f"/g{i}")
            assert response.status == 200
            connections.append(response.json()["connection"])
        assert len(set(connections)) == 3  # each connection said GOAWAY after one stream
    finally:
        server.close()


async def test_refused_streams_are_retried(dataplane: DataPlane) -> None:
    Refuser.refused = 0
    server = await _backend(Refuser)
    port = free_port()
    await dataplane.apply(h2c_config(port, server.sockets[0].getsockname()[1]))
    try:
        await request(ADDR, port, "/warm")  # refused, retried, answered
        responses = [await request(ADDR, port, f"/r{i}") for i in range(4)]
        assert [r.status for r in responses] == [200] * 4
        assert Refuser.refused >= 8
    finally:
        server.close()


async def test_unreachable_h2c_endpoint_is_503(dataplane: DataPlane) -> None:
    port = free_port()
    await dataplane.apply(h2c_config(port, free_port()))  # nothing listens there
    response = await request(ADDR, port, "/")
    assert response.status == 503
