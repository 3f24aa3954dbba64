"""TCP splice backpressure, in process: a peer that stops reading stops the other one.

Without flow control the gateway would keep reading from the fast side into memory;
with it, the fast side's sends stall once the kernel buffers on the way (a few MiB
each on loopback) and the splice's own small buffers are full. Each test offers far
more than those buffers hold and checks the sender stalls well before, then lets the
slow side read and checks every byte arrives in order.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from turnout import ir
from turnout.dataplane import DataPlane

from .helpers import config, free_port

OFFERED = 96 * 1024 * 1024
# Loopback socket buffers on the path (client send, gateway receive and send, peer
# receive) can reach about 20 MiB together; far below what is offered.
STALL_BELOW = 48 * 1024 * 1024
CHUNK = bytes(range(256)) * 256  # 64 KiB
_TWICE = CHUNK * 2


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=1.0)


async def _tcp_gateway(dp: DataPlane, backend_port: int) -> int:
    port = free_port()
    route = ir.L4Route("tcproute/default/r", (ir.L4Backend(1, "c"),))
    listener = ir.Listener(
        name="default/gw/tcp",
        address="127.0.0.1",
        port=port,
        spec_port=port,
        protocol="TCP",
        l4_route=route,
    )
    result = await dp.apply(config((listener,), {"c": [("127.0.0.1", backend_port)]}))
    assert result == {"default/gw/tcp": None}
    return port


async def _push_until_stalled(sock: socket.socket) -> int:
    """Send until nothing more is accepted for 0.5 s (or OFFERED is reached)."""
    sent = 0
    idle = 0
    while sent < OFFERED and idle < 10:
        try:
            offset = sent % len(CHUNK)  # a partial send: continue the pattern where it stopped
            sent += sock.send(_TWICE[offset : offset + len(CHUNK)])
            idle = 0
        except BlockingIOError:
            idle += 1
            await asyncio.sleep(0.05)
    return sent


async def _drain(sock: socket.socket, expected: int) -> bytes:
    loop = asyncio.get_running_loop()
    received = bytearray()
    while len(received) < expected:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10)
        assert chunk, "closed early"
        received += chunk
    return bytes(received)


def _expected(n: int) -> bytes:
    return (CHUNK * (n // len(CHUNK) + 1))[:n]


async def _backend() -> tuple[socket.socket, int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    return listener, listener.getsockname()[1]


async def test_slow_backend_stalls_the_client(dataplane: DataPlane) -> None:
    loop = asyncio.get_running_loop()
    backend_listener, backend_port = await _backend()
    port = await _tcp_gateway(dataplane, backend_port)
    client = socket.create_connection(("127.0.0.1", port))
    client.setblocking(False)
    upstream, _ = await asyncio.wait_for(loop.sock_accept(backend_listener), 5)
    upstream.setblocking(False)
    try:
        sent = await _push_until_stalled(client)  # the backend reads nothing meanwhile
        assert sent < STALL_BELOW, f"the gateway buffered {sent} bytes for a stalled backend"
        assert await _drain(upstream, sent) == _expected(sent)
    finally:
        client.close()
        upstream.close()
        backend_listener.close()


async def test_slow_client_stalls_the_backend(dataplane: DataPlane) -> None:
    loop = asyncio.get_running_loop()
    backend_listener, backend_port = await _backend()
    port = await _tcp_gateway(dataplane, backend_port)
    client = socket.create_connection(("127.0.0.1", port))
    client.setblocking(False)
    upstream, _ = await asyncio.wait_for(loop.sock_accept(backend_listener), 5)
    upstream.setblocking(False)
    try:
        sent = await _push_until_stalled(upstream)  # the client reads nothing meanwhile
        assert sent < STALL_BELOW, f"the gateway buffered {sent} bytes for a stalled client"
        assert await _drain(client, sent) == _expected(sent)
    finally:
        client.close()
        upstream.close()
        backend_listener.close()


async def test_refused_backend_resets_the_client(dataplane: DataPlane) -> None:
    closed_port = free_port()  # nothing listens there: the connect is refused
    port = await _tcp_gateway(dataplane, closed_port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        with pytest.raises(ConnectionResetError):
            data = await asyncio.wait_for(reader.read(1), 5)
            pytest.fail(f"expected a TCP reset, got {data!r}")
    finally:
        writer.close()
