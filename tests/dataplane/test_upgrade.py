"""HTTP/1.1 Upgrade (WebSocket handshakes) through the DataPlane, as raw bytes.

The backend here is a raw asyncio server: it answers an upgrade request with 101 (and a
greeting in the same write, to test bytes that follow the 101 head), then echoes every
byte; on EOF it writes "BYE" and closes. ``/refuse`` answers 403 instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from turnout import ir
from turnout.dataplane import DataPlane
from turnout.dataplane.limits import Limits

from .helpers import Client, free_port, rule, simple_config, to

pytestmark = pytest.mark.timeout(30)

ADDR = "127.0.0.1"
HANDSHAKE = (
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n"
    b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


class UpgradeBackend:
    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.eof_seen = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._serve, ADDR, 0)
        return ADDR, self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            if head.startswith(b"GET /refuse"):
                writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\n\r\nrefuse")
                await writer.drain()
                return
            if b"upgrade: websocket" not in head.lower():
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain")
                await writer.drain()
                return
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                b"\r\nHELLO"
            )
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            self.eof_seen.set()
            writer.write(b"BYE")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def backend() -> AsyncIterator[UpgradeBackend]:
    b = UpgradeBackend()
    yield b
    b.close()


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=1.0)


async def _serve(
    dp: DataPlane, backend: UpgradeBackend, request_timeout: float | None = None
) -> int:
    port = free_port()
    route = rule(backends=(to("ws"),))
    if request_timeout is not None:
        route = ir.HTTPRouteRule(
            name="r", match=route.match, backends=route.backends, request_timeout=request_timeout
        )
    result = await dp.apply(simple_config(port, (route,), {"ws": [await backend.start()]}))
    assert set(result.values()) == {None}
    return port


async def _switched(client: Client) -> bytes:
    """Read the 101 head; return the tunnel bytes that came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = await asyncio.wait_for(client.reader.read(65536), 5)
        assert more, data
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"http/1.1 101 switching protocols", head
    assert b"connection: upgrade" in lines and b"upgrade: websocket" in lines, head
    assert b"sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in lines, head
    return rest


async def _read_exactly(client: Client, size: int, have: bytes = b"") -> bytes:
    while len(have) < size:
        more = await asyncio.wait_for(client.reader.read(65536), 5)
        assert more, have
        have += more
    return have


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "one-byte-at-a-time"])
async def test_handshake_then_bytes_both_ways(
    backend: UpgradeBackend, dataplane: DataPlane, bytewise: bool
) -> None:
    port = await _serve(dataplane, backend)
    client = await Client.connect(ADDR, port)
    try:
        if bytewise:
            for i in range(len(HANDSHAKE)):
                await client.send(HANDSHAKE[i : i + 1])
            await client.send(b"EARLY")
        else:
            await client.send(HANDSHAKE + b"EARLY")  # tunnel bytes in the handshake's packet
        rest = await _switched(client)
        got = await _read_exactly(client, len(b"HELLOEARLY"), rest)
        assert got == b"HELLOEARLY"
        await client.send(b"\x81\x05frame")
        assert await _read_exactly(client, 7) == b"\x81\x05frame"
    finally:
        await client.close()
    head = backend.heads[0].lower()
    assert b"connection: upgrade\r\n" in head and b"upgrade: websocket\r\n" in head, head
    assert b"sec-websocket-key: dghlihnhbxbszsbub25jzq==\r\n" in head, head


async def test_refused_upgrade_is_a_normal_response(
    backend: UpgradeBackend, dataplane: DataPlane
) -> None:
    port = await _serve(dataplane, backend)
    client = await Client.connect(ADDR, port)
    try:
        await client.send(HANDSHAKE.replace(b"/chat", b"/refuse"))
        response = await client.response()
        assert (response.status, response.body) == (403, b"refuse")
        assert response.header("connection") == "close"
        assert await client.wait_closed()
    finally:
        await client.close()


async def test_upgrade_header_without_connection_upgrade_is_not_an_upgrade(
    backend: UpgradeBackend, dataplane: DataPlane
) -> None:
    port = await _serve(dataplane, backend)
    client = await Client.connect(ADDR, port)
    try:
        await client.send(b"GET /x HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\n")
        response = await client.response()
        assert (response.status, response.body) == (200, b"plain")
    finally:
        await client.close()
    assert b"upgrade" not in backend.heads[0].lower()


async def test_large_transfer_with_backpressure(
    backend: UpgradeBackend, dataplane: DataPlane
) -> None:
    """8 MiB written before anything is read back: the tunnel pauses and resumes both
    sides and delivers every byte, in order."""
    port = await _serve(dataplane, backend)
    client = await Client.connect(ADDR, port)
    payload = os.urandom(8 * 1024 * 1024)
    try:
        await client.send(HANDSHAKE)
        rest = await _switched(client)
        client.writer.write(payload)  # not drained: the client does not read meanwhile
        await asyncio.sleep(0.2)
        got = await _read_exactly(client, 5 + len(payload), rest)
        await client.writer.drain()
        assert got[:5] == b"HELLO"
        assert hashlib.sha256(got[5:]).digest() == hashlib.sha256(payload).digest()
    finally:
        await client.close()


async def test_half_close_is_passed_on(backend: UpgradeBackend, dataplane: DataPlane) -> None:
    port = await _serve(dataplane, backend)
    client = await Client.connect(ADDR, port)
    try:
        await client.send(HANDSHAKE)
        rest = await _switched(client)
        client.writer.write_eof()  # the backend sees EOF, answers BYE, closes
        data = rest
        while more := await asyncio.wait_for(client.reader.read(65536), 5):
            data += more
        assert data == b"HELLOBYE"
        assert backend.eof_seen.is_set()
    finally:
        await client.close()


async def test_tunnel_outlives_reload_and_request_timeout(
    backend: UpgradeBackend, dataplane: DataPlane
) -> None:
    """timeouts.request ends with the handshake (GEP-1742), and a new configuration
    does not touch an open tunnel."""
    port = await _serve(dataplane, backend, request_timeout=0.2)
    client = await Client.connect(ADDR, port)
    try:
        await client.send(HANDSHAKE)
        await _read_exactly(client, 5, await _switched(client))
        await asyncio.sleep(0.4)
        new = simple_config(port, (rule(direct_status=503),), {}, version=2)
        assert set((await dataplane.apply(new)).values()) == {None}
        await client.send(b"still here")
        assert await _read_exactly(client, 10) == b"still here"
    finally:
        await client.close()


async def test_close_ends_tunnels(backend: UpgradeBackend, dataplane: DataPlane) -> None:
    port = await _serve(dataplane, backend)
    client = await Client.connect(ADDR, port)
    try:
        await client.send(HANDSHAKE)
        await _read_exactly(client, 5, await _switched(client))
        await asyncio.wait_for(dataplane.close(drain_timeout=5.0), 2.0)  # no drain wait
        assert await client.wait_closed()
    finally:
        await client.close()


async def test_tunnel_is_not_closed_as_idle(backend: UpgradeBackend) -> None:
    """The idle keep-alive timeout is for connections between requests; a quiet tunnel
    (a WebSocket waiting for messages) stays open."""
    dp = DataPlane(Limits(idle_timeout=0.2, header_timeout=0.2))
    try:
        port = await _serve(dp, backend)
        client = await Client.connect(ADDR, port)
        try:
            await client.send(HANDSHAKE)
            await _read_exactly(client, 5, await _switched(client))
            await asyncio.sleep(0.8)  # several idle timeouts
            await client.send(b"ping")
            assert await _read_exactly(client, 4) == b"ping"
        finally:
            await client.close()
    finally:
        await dp.close(drain_timeout=1.0)


async def test_upgrade_request_with_a_body_is_refused(
    backend: UpgradeBackend, dataplane: DataPlane
) -> None:
    """llhttp treats what follows an upgrade request's head as the new protocol's bytes,
    so a body cannot be forwarded: 400, and nothing reaches the backend."""
    port = await _serve(dataplane, backend)
    for framing in (
        b"Content-Length: 3\r\n\r\nabc",
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ):
        client = await Client.connect(ADDR, port)
        try:
            await client.send(HANDSHAKE[:-2] + framing)
            response = await client.response()
            assert response.status == 400
            assert await client.wait_closed()
        finally:
            await client.close()
    assert backend.heads == []
    # An explicit empty body is no body: the handshake goes through.
    client = await Client.connect(ADDR, port)
    try:
        await client.send(HANDSHAKE[:-2] + b"Content-Length: 0\r\n\r\n")
        await _read_exactly(client, 5, await _switched(client))
    finally:
        await client.close()
