"""Leak tests of the HTTP/1.1 data plane: what serving a request leaves behind.

Issue 6 cites gateways that leaked memory under load. Each test here drives one kind of
traffic through the proxy's real protocol objects (``ClientConnection``, ``Exchange``,
pooled ``UpstreamConnection``; see leakharness.py) thousands of times and measures, with
tracemalloc (tests/retained.py), the memory still allocated after a warm-up: a request,
a connection or a failure that leaves anything behind grows it in proportion to the
count; the bounded caches on the request path (``messages._LOWER``, the routing tables'
path and host caches) are filled by the warm-up and grow no more. Nothing is timed.

A window of STEPS steps may retain at most 4 KiB (retained.assert_no_leak): one pointer
(8 bytes) kept per step would be 12 KiB.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from turnout import ir
from turnout.dataplane.upstream import UpstreamConnection

from ..retained import assert_no_leak, retained, retained_async
from .helpers import rule, to
from .leakharness import MemoryTransport, Proxy, on_uvloop

WARMUP = 500
STEPS = 1_500

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!"
OK_CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
    b"5\r\nHello\r\n8\r\n, world!\r\n0\r\n\r\n"
)
GET = b"GET /api/x HTTP/1.1\r\nHost: svc.example\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")
_COOKIE = re.compile(rb"set-cookie: session=([^;]+);")


def _path(kind: str, value: str) -> ir.RouteMatch:
    return ir.RouteMatch(path=ir.PathMatch(type=kind, value=value))  # type: ignore[arg-type]


ROUTES = (
    rule(
        "edited",
        match=_path("PathPrefix", "/edit"),
        backends=(to("c"),),
        filters=ir.Filters(
            request_headers=ir.HeaderModifier(set=(("x-env", "prod"),), remove=("accept",)),
            response_headers=ir.HeaderModifier(add=(("x-served-by", "turnout"),)),
        ),
    ),
    rule(
        "moved",
        match=_path("PathPrefix", "/old"),
        filters=ir.Filters(redirect=ir.RequestRedirect(status_code=301)),
    ),
    rule("api", match=_path("PathPrefix", "/api"), backends=(to("c"),)),
)


def _proxy(routes: tuple[ir.HTTPRouteRule, ...] = ROUTES, endpoints: int = 1) -> Proxy:
    return Proxy((ir.VirtualHost(hostname="*", routes=routes),), {"c": endpoints})


def _respond_with(response: bytes) -> Callable[[UpstreamConnection, bytes], None]:
    def respond(conn: UpstreamConnection, request: bytes) -> None:
        conn.data_received(response)

    return respond


def _expect(transport: MemoryTransport, *statuses: bytes) -> None:
    """The client got exactly these responses, by status code, in order."""
    data = transport.take()
    got = _STATUS.findall(data)
    assert got == list(statuses), data[:300]


# --- one keep-alive connection, request after request ---------------------------------------


@on_uvloop
async def test_plain_get_as_received_retains_nothing() -> None:
    """The fast path: the head forwarded as received, the response written as read."""
    proxy = _proxy()
    client, transport = proxy.connect()
    respond = _respond_with(OK)

    def step() -> None:
        client.data_received(GET)
        assert proxy.answer(respond) == 1
        _expect(transport, b"200")

    assert_no_leak(retained("plain GET", step, warmup=WARMUP, steps=STEPS))
    assert proxy.backends.connects == 1  # one pooled upstream connection served them all


@on_uvloop
async def test_chunked_post_retains_nothing() -> None:
    proxy = _proxy()
    client, transport = proxy.connect()
    head = b"POST /api/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    respond = _respond_with(OK_CHUNKED)

    def step() -> None:
        client.data_received(head + b"4\r\nabcd\r\n")  # the body in two reads
        client.data_received(b"3\r\nefg\r\n0\r\n\r\n")
        assert proxy.answer(respond) == 1
        _expect(transport, b"200")

    assert_no_leak(retained("chunked POST", step, warmup=WARMUP, steps=STEPS))


@on_uvloop
async def test_filters_redirects_and_404s_retain_nothing() -> None:
    proxy = _proxy(ROUTES[:2])  # no /api route: 404
    client, transport = proxy.connect()
    requests = (
        b"GET /edit/a HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"
        b"GET /old/b?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /api/c HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    respond = _respond_with(OK)

    def step() -> None:
        client.data_received(requests)
        assert proxy.answer(respond) == 1
        _expect(transport, b"200", b"301", b"404")

    assert_no_leak(retained("filters, redirect, 404", step, warmup=WARMUP, steps=STEPS))


@on_uvloop
async def test_pipelined_requests_retain_nothing() -> None:
    proxy = _proxy()
    client, transport = proxy.connect()
    respond = _respond_with(OK)

    def step() -> None:
        client.data_received(GET * 4)
        assert proxy.answer(respond) == 4
        _expect(transport, b"200", b"200", b"200", b"200")

    assert_no_leak(retained("4 pipelined GETs", step, warmup=WARMUP, steps=STEPS))


# --- failures -------------------------------------------------------------------------------


@on_uvloop
async def test_refused_connects_retain_nothing() -> None:
    """Every connect is refused (the endpoint stays ejected): 503 on a kept-alive connection."""
    proxy = _proxy(endpoints=2)
    proxy.backends.refuse = True
    client, transport = proxy.connect()

    def step() -> None:
        client.data_received(GET)
        _expect(transport, b"503")

    assert_no_leak(retained("refused connects", step, warmup=WARMUP, steps=STEPS))


def _reset(conn: UpstreamConnection, request: bytes) -> None:
    assert isinstance(conn.transport, MemoryTransport)
    conn.transport.lose(ConnectionResetError("reset by peer"))


def _malformed(conn: UpstreamConnection, request: bytes) -> None:
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")


@pytest.mark.parametrize(
    ("respond", "status"), [(_reset, b"503"), (_malformed, b"502")], ids=["reset", "malformed"]
)
@on_uvloop
async def test_failed_upstream_connections_retain_nothing(
    respond: Callable[[UpstreamConnection, bytes], None], status: bytes
) -> None:
    """A fresh upstream connection reset before its response (503), or answering
    something that is not HTTP (502): each request gets its own, which is then closed."""
    proxy = _proxy()
    client, transport = proxy.connect()

    def step() -> None:
        client.data_received(GET)
        assert proxy.answer(respond) == 1
        _expect(transport, status)

    assert_no_leak(retained(f"upstream {status.decode()}", step, warmup=WARMUP, steps=STEPS))


@on_uvloop
async def test_retries_after_a_reused_connection_was_closed_retain_nothing() -> None:
    """The backend closes its idle keep-alive connection as it is reused: the request is
    sent again on a fresh connection, which is then pooled for the next round."""
    proxy = _proxy()
    client, transport = proxy.connect()
    served: list[UpstreamConnection] = []

    def respond(conn: UpstreamConnection, request: bytes) -> None:
        if served and conn is served[-1]:
            served.clear()
            _reset(conn, request)  # the pooled one, closed by the backend meanwhile
        else:
            served.append(conn)
            conn.data_received(OK)

    def step() -> None:
        client.data_received(GET)
        assert proxy.answer(respond) == 2
        _expect(transport, b"200")

    client.data_received(GET)  # a first connection to pool
    assert proxy.answer(respond) == 1
    _expect(transport, b"200")
    assert_no_leak(retained("closed keep-alive retried", step, warmup=WARMUP, steps=STEPS))


# --- connections ----------------------------------------------------------------------------


@on_uvloop
async def test_short_connections_retain_nothing() -> None:
    """Open, one request, the client closes: nothing of the connection stays."""
    proxy = _proxy()
    respond = _respond_with(OK)

    def step() -> None:
        client, transport = proxy.connect()
        client.data_received(GET)
        assert proxy.answer(respond) == 1
        _expect(transport, b"200")
        transport.lose(None)
        proxy.wire.settle()

    assert_no_leak(retained("short connections", step, warmup=WARMUP, steps=STEPS))
    assert not proxy.state.connections


@on_uvloop
async def test_http10_requests_closed_by_the_proxy_retain_nothing() -> None:
    """HTTP/1.0 without keep-alive: the proxy answers and closes each connection."""
    proxy = _proxy()
    respond = _respond_with(OK)
    request = b"GET /api/x HTTP/1.0\r\nUser-Agent: old\r\n\r\n"

    def step() -> None:
        client, transport = proxy.connect()
        client.data_received(request)
        assert proxy.answer(respond) == 1
        _expect(transport, b"200")
        assert transport.closed

    assert_no_leak(retained("HTTP/1.0 with close", step, warmup=WARMUP, steps=STEPS))
    assert not proxy.state.connections
    assert proxy.backends.connects == 1  # the upstream side stayed keep-alive


@on_uvloop
async def test_connections_lost_mid_request_retain_nothing() -> None:
    """The client goes away while its request is upstream: the exchange is aborted and
    the upstream connection (state unknown) closed."""
    proxy = _proxy()

    def step() -> None:
        client, transport = proxy.connect()
        client.data_received(GET)
        ((conn, _),) = proxy.backends.requests()
        transport.lose(ConnectionResetError())
        proxy.wire.settle()
        assert conn.closed

    assert_no_leak(retained("clients lost mid-request", step, warmup=WARMUP, steps=STEPS))
    assert not proxy.state.connections


# --- per-request machinery: timers, mirrors, sessions, tunnels ------------------------------


@on_uvloop
async def test_timeouts_and_retries_retain_nothing() -> None:
    """A rule with timeouts and a retry policy: each request arms and cancels timers
    (PolicyRun) and is retried once after a 503 from the backend."""
    policy_rule = ir.HTTPRouteRule(
        name="policy",
        match=_path("PathPrefix", "/"),
        backends=(to("c"),),
        request_timeout=30.0,
        backend_request_timeout=10.0,
        retry=ir.RetryPolicy(attempts=2, codes=(503,)),
    )
    proxy = _proxy((policy_rule,))
    client, transport = proxy.connect()
    unavailable = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    answers = [unavailable, OK]

    def respond(conn: UpstreamConnection, request: bytes) -> None:
        conn.data_received(answers[0])
        answers.reverse()

    async def step() -> None:
        client.data_received(GET)
        assert proxy.answer(respond) == 1
        for _ in range(10):  # the retry's backoff timer (0 s) fires within a few turns
            await asyncio.sleep(0)
            if proxy.answer(respond):
                break
        _expect(transport, b"200")

    assert_no_leak(await retained_async("timeouts and retries", step, warmup=WARMUP, steps=STEPS))


@on_uvloop
async def test_mirrored_requests_retain_nothing() -> None:
    """Each request is copied to a mirror (MirrorExchange, with its timer) whose
    response is read and dropped; both upstream connections are pooled."""
    mirrored = rule(
        "mirrored",
        backends=(to("c"),),
        filters=ir.Filters(mirrors=(ir.RequestMirror(cluster="m"),)),
    )
    proxy = Proxy((ir.VirtualHost(hostname="*", routes=(mirrored,)),), {"c": 1, "m": 1})
    client, transport = proxy.connect()
    post = b"POST /m HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    respond = _respond_with(OK)

    async def step() -> None:
        client.data_received(post)
        assert proxy.answer(respond) == 2
        _expect(transport, b"200")
        # A turn of the loop, as between two reads in production: the mirror's timer,
        # cancelled when its response came, is freed by the loop there.
        await asyncio.sleep(0)

    assert_no_leak(await retained_async("mirrored POST", step, warmup=WARMUP, steps=STEPS))
    assert proxy.backends.connects == 2


@on_uvloop
async def test_session_persistence_retains_nothing() -> None:
    """Sessions are self-contained tokens (session.py): issuing one per new client and
    honouring it on the next request keeps no table of sessions."""
    sticky = ir.HTTPRouteRule(
        name="sticky",
        match=_path("PathPrefix", "/"),
        backends=(to("c"),),
        session_persistence=ir.model.SessionPersistence(
            type="Cookie", name="session", session="httproute/default/r/rule/0"
        ),
    )
    proxy = _proxy((sticky,), endpoints=3)
    respond = _respond_with(OK)

    def step() -> None:
        client, transport = proxy.connect()
        client.data_received(GET)
        assert proxy.answer(respond) == 1
        data = transport.take()
        cookie = _COOKIE.search(data)
        assert cookie is not None, data[:300]
        client.data_received(GET[:-2] + b"Cookie: session=" + cookie[1] + b"\r\n\r\n")
        assert proxy.answer(respond) == 1
        assert b"set-cookie" not in transport.take()  # the session was honoured
        transport.lose(None)
        proxy.wire.settle()

    assert_no_leak(retained("sticky sessions", step, warmup=WARMUP, steps=STEPS))


@on_uvloop
async def test_upgraded_connections_retain_nothing() -> None:
    """A WebSocket handshake answered 101 turns both connections into a tunnel
    (tunnel.py); bytes go through, then the client closes and both sides end."""
    proxy = _proxy()
    upgrade = (
        b"GET /api/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    switching = (
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    upstreams: list[MemoryTransport] = []

    def respond(conn: UpstreamConnection, request: bytes) -> None:
        assert isinstance(conn.transport, MemoryTransport)
        upstreams.append(conn.transport)  # the tunnel takes it from the connection
        conn.data_received(switching + b"hi")

    def step() -> None:
        client, transport = proxy.connect()
        client.data_received(upgrade)
        assert proxy.answer(respond) == 1
        (upstream_transport,) = upstreams
        upstreams.clear()
        assert transport.take().endswith(b"\r\n\r\nhi")
        transport.get_protocol().data_received(b"ping")  # type: ignore[attr-defined]
        assert upstream_transport.take() == b"ping"
        transport.lose(None)
        proxy.wire.settle()  # the client's end is lost: the upstream is closed
        proxy.wire.settle()
        assert upstream_transport.closed

    assert_no_leak(retained("upgraded connections", step, warmup=WARMUP, steps=STEPS))
    assert not proxy.state.connections
