"""HTTP/1.1 protocol tests without sockets: raw bytes through fake transports.

Each scenario runs twice: the client bytes fed whole, and one byte at a time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnout import ir
from turnout.dataplane.http1 import ClientConnection, SocketState
from turnout.dataplane.router import compile_routes
from turnout.dataplane.upstream import (
    EndpointPool,
    UpstreamCluster,
    UpstreamConnection,
    UpstreamUser,
)

from .helpers import ResponseReader, config, listener, rule, to


class FakeTransport(asyncio.Transport):
    def __init__(self, peer: tuple[str, int] = ("10.1.2.3", 5555)) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.paused = False
        self.closed = False
        self.aborted = False
        self._peer = peer

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written.append(bytes(data))

    def data(self) -> bytes:
        return b"".join(self.written)

    def take(self) -> bytes:
        out = self.data()
        self.written.clear()
        return out

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        # http1 hands a connection that opens with the HTTP/2 preface to http2.
        self.protocol: asyncio.BaseProtocol | None = protocol

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._peer if name == "peername" else default


class FakeUpstreams:
    """A connector that 'connects' at once to a fake transport."""

    def __init__(self) -> None:
        self.connections: list[tuple[UpstreamConnection, FakeTransport]] = []

    def __call__(self, pool: EndpointPool, user: UpstreamUser) -> None:
        conn = UpstreamConnection(pool)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        self.connections.append((conn, transport))
        conn.bind(user)


def _table(routes: tuple[ir.HTTPRouteRule, ...], fake: FakeUpstreams) -> SocketState:
    pool = EndpointPool("10.0.0.9", 80, connector=fake)
    clusters = {"c": UpstreamCluster("c", (pool,)), "empty": UpstreamCluster("empty", ())}
    vhost = ir.VirtualHost(hostname="*", routes=routes)
    table = compile_routes(config((listener(8080, (vhost,), spec_port=8080),)), clusters)
    return SocketState(next(iter(table.sockets.values())))


def _client(state: SocketState) -> tuple[ClientConnection, FakeTransport]:
    conn = ClientConnection(state)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def _feed(proto: Any, data: bytes, bytewise: bool) -> None:
    if bytewise:
        for i in range(len(data)):
            proto.data_received(data[i : i + 1])
    else:
        proto.data_received(data)


def _dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert body == b"\r\n"
            return out
        out += body[:size]
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]


def _responses(data: bytes) -> list[Any]:
    reader = ResponseReader()
    reader.feed(data)
    return reader.responses


ROUTES = (
    rule(
        "missing",
        match=ir.RouteMatch(path=ir.PathMatch(type="Exact", value="/teapot")),
        direct_status=418,
    ),
    rule(
        "redirect",
        match=ir.RouteMatch(path=ir.PathMatch(type="PathPrefix", value="/old")),
        filters=ir.Filters(redirect=ir.RequestRedirect(status_code=301)),
    ),
    rule(
        "nobody",
        match=ir.RouteMatch(path=ir.PathMatch(type="Exact", value="/none")),
        backends=(to("empty"),),
    ),
    rule(
        "proxy",
        match=ir.RouteMatch(path=ir.PathMatch(type="PathPrefix", value="/api")),
        backends=(to("c"),),
    ),
)

bytewise = pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])


@bytewise
async def test_local_responses_pipelined_in_order(bytewise: bool) -> None:
    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    _feed(
        client,
        b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /old/x?y=1 HTTP/1.1\r\nHost: a.example:9999\r\n\r\n"
        b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /none HTTP/1.1\r\nHost: a\r\n\r\n",
        bytewise,
    )
    responses = _responses(transport.data())
    assert [r.status for r in responses] == [418, 301, 404, 503]
    assert responses[1].header("location") == "http://a.example:8080/old/x?y=1"
    assert not transport.closed


@bytewise
async def test_malformed_request_gets_400_and_close(bytewise: bool) -> None:
    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    _feed(client, b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\nBLAH\x00 / HTTP/1.1\r\n\r\n", bytewise)
    responses = _responses(transport.data())
    assert [r.status for r in responses] == [418, 400]
    assert responses[1].header("connection") == "close"
    assert transport.closed


async def test_oversized_head_gets_431() -> None:
    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    client.data_received(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000)
    assert _responses(transport.data())[0].status == 431
    assert transport.closed


async def test_connection_close_and_http10() -> None:
    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    client.data_received(b"GET /teapot HTTP/1.0\r\n\r\nGET /teapot HTTP/1.0\r\n\r\n")
    responses = _responses(transport.data())
    assert [r.status for r in responses] == [418]  # nothing is read after the last request
    assert responses[0].header("connection") == "close"
    assert transport.closed

    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    client.data_received(b"GET /teapot HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert _responses(transport.data())[0].header("connection") == "keep-alive"
    assert not transport.closed


@bytewise
async def test_proxied_request_and_response(bytewise: bool) -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    _feed(
        client,
        b"POST /api/x?q=1 HTTP/1.1\r\nHost: svc.example\r\nConnection: keep-alive, X-Hop\r\n"
        b"X-Hop: 1\r\nKeep-Alive: 5\r\nTransfer-Encoding: chunked\r\nAccept: */*\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        bytewise,
    )
    ((upstream, upstream_transport),) = fake.connections
    sent = upstream_transport.take()
    head, _, body = sent.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/x?q=1 HTTP/1.1"
    assert b"host: svc.example" in lines
    assert b"Accept: */*" in lines
    assert b"x-forwarded-for: 10.1.2.3" in lines
    assert b"x-forwarded-proto: http" in lines
    assert b"transfer-encoding: chunked" in lines
    assert not any(
        line.lower().startswith((b"connection", b"x-hop", b"keep-alive")) for line in lines
    )
    assert _dechunk(body) == b"abcde"

    _feed(
        upstream,
        b"HTTP/1.1 200 OK\r\nConnection: X-Up\r\nX-Up: 1\r\nContent-Length: 5\r\n\r\nhello",
        bytewise,
    )
    (response,) = _responses(transport.data())
    assert response.status == 200 and response.body == b"hello"
    assert response.header("x-up") is None
    assert upstream.pool.idle == [upstream]  # back in the pool for reuse


@bytewise
async def test_upstream_chunked_response_rechunked(bytewise: bool) -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
    ((upstream, _),) = fake.connections
    _feed(
        upstream,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        bytewise,
    )
    (response,) = _responses(transport.data())
    assert response.body == b"abcd"
    assert response.header("transfer-encoding") == "chunked"


async def test_head_response_without_body() -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(b"HEAD /api HTTP/1.1\r\nHost: a\r\n\r\n")
    ((upstream, _upstream_transport),) = fake.connections
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    assert transport.data().endswith(b"Content-Length: 1000\r\n\r\n")
    assert upstream.pool.idle == [upstream]
    # the connection is reused for the next request, and parses its response correctly
    client.data_received(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
    assert len(fake.connections) == 1
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert transport.data().endswith(b"\r\n\r\nok")


async def test_upstream_reset_before_response_gives_503() -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
    ((upstream, _),) = fake.connections
    upstream.connection_lost(ConnectionResetError())
    (response,) = _responses(transport.data())
    assert response.status == 503
    assert not transport.closed  # the client connection stays usable


async def test_reused_connection_reset_is_retried_once() -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
    first, _ = fake.connections[0]
    first.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    client.data_received(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
    first.connection_lost(None)  # the backend closed the idle connection just now
    assert len(fake.connections) == 2
    second, second_transport = fake.connections[1]
    assert second_transport.data().startswith(b"GET /api HTTP/1.1")
    second.data_received(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert [r.status for r in _responses(transport.data())] == [200, 204]


async def test_backpressure_pauses_the_other_side() -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
    ((upstream, upstream_transport),) = fake.connections
    upstream.pause_writing()  # upstream socket buffer full: stop reading the client
    assert transport.paused
    upstream.resume_writing()
    assert not transport.paused
    client.pause_writing()  # client socket buffer full: stop reading the upstream
    assert upstream_transport.paused
    client.resume_writing()
    assert not upstream_transport.paused


async def test_client_gone_closes_upstream() -> None:
    fake = FakeUpstreams()
    client, _ = _client(_table(ROUTES, fake))
    client.data_received(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
    ((upstream, upstream_transport),) = fake.connections
    client.connection_lost(None)
    assert upstream_transport.aborted
    assert upstream.pool.idle == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [
                    b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n",
                    b"POST /old HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"5\r\nhello\r\n",
                    b"0\r\n\r\n",
                    b"Content-Length: 3\r\n",
                    b"\r\n",
                    b"HTTP/1.0",
                ]
            ),
        ),
        max_size=12,
    )
)
def test_hostile_input_never_raises(chunks: list[bytes]) -> None:
    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    for chunk in chunks:
        client.data_received(chunk)  # must not raise, whatever the bytes
    if getattr(transport, "protocol", None) is not None:
        return  # the HTTP/2 preface: http2 took the connection over, it answers in frames
    for response in _responses(transport.data()):
        assert response.status in (301, 400, 404, 414, 418, 431, 503, 505)
