"""Chunked trailer fields never leak into the next message on a kept-alive connection.

llhttp (through httptools) reports trailer fields with the same ``on_header`` callback
as header fields; collected naively they became header fields of the *next* request
(client side) or response (upstream side) on the connection: a header injection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from turnout.dataplane import DataPlane
from turnout.demo.echo import start_echo

from .helpers import Client, free_port, rule, simple_config, to

ADDR = "127.0.0.1"


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=0.5)


async def test_request_trailers_do_not_become_headers_of_the_next_request(
    dataplane: DataPlane,
) -> None:
    server = await start_echo(ADDR, 0, name="e")
    port = free_port()
    backend = server.sockets[0].getsockname()[1]
    await dataplane.apply(
        simple_config(port, (rule(backends=(to("c"),)),), {"c": [(ADDR, backend)]})
    )
    client = await Client.connect(ADDR, port)
    try:
        await client.send(
            b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX-Injected: yes\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        first, second = await client.responses(2)
        assert first.json()["body_length"] == 3
        assert second.json()["path"] == "/b"
        assert second.echoed("x-injected") is None
    finally:
        await client.close()
        server.close()


async def _trailer_backend() -> asyncio.Server:
    """Answers every request with a chunked body ending in a trailer field."""

    class Backend(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            for _ in range(data.count(b"\r\n\r\n")):
                self.transport.write(  # type: ignore[attr-defined]
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"2\r\nok\r\n0\r\nX-Trailer-Leak: yes\r\n\r\n"
                )

    return await asyncio.get_running_loop().create_server(Backend, ADDR, 0)


async def test_response_trailers_do_not_become_headers_of_the_next_response(
    dataplane: DataPlane,
) -> None:
    server = await _trailer_backend()
    port = free_port()
    backend = server.sockets[0].getsockname()[1]
    await dataplane.apply(
        simple_config(port, (rule(backends=(to("c"),)),), {"c": [(ADDR, backend)]})
    )
    client = await Client.connect(ADDR, port)
    try:
        for _ in range(3):  # the same pooled upstream connection each time
            await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            response = await client.response()
            assert response.body == b"ok"
            assert response.header("x-trailer-leak") is None
    finally:
        await client.close()
        server.close()
