"""Leak tests of the HTTP/2 front (http2.py, h2stream.py): streams and connections.

As in test_leaks.py (the method is in tests/retained.py): the proxy's protocol objects
serve thousands of streams from a client written frame by frame (leakharness.H2Peer,
which keeps nothing per stream), forwarded to in-memory HTTP/1.1 backends; the memory
still allocated after a warm-up must not grow with the count. An HTTP/2 connection is
long-lived by design, so what it keeps per stream it has served is a leak for as long
as the client keeps it open -- which the client decides.
"""

from __future__ import annotations

from hyperframe.frame import HeadersFrame

from turnout import ir
from turnout.dataplane import h2base
from turnout.dataplane.upstream import UpstreamConnection

from ..retained import assert_no_leak, retained
from .helpers import rule, to
from .leakharness import H2Peer, Proxy, on_uvloop
from .test_leaks import OK, _respond_with

WARMUP = 300  # streams: more than h2 remembers closed ones of (h2base.Connection)
STEPS = 1_000
# What the streams of one connection may retain: h2 remembers the last 200 closed streams
# in an OrderedDict whose table is rebuilt now and then as streams come and go, ~24 KiB
# more or less. A leak of an object per stream (50 bytes and up) is 50 KiB and more.
STREAMS_FLOOR = 32 * 1024

GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a.test"), (b":path", b"/api")]
MISSING = [(n, b"/nowhere" if n == b":path" else v) for n, v in GET]
POST = [(n, b"POST" if n == b":method" else v) for n, v in GET] + [(b"content-length", b"5")]


def _proxy() -> Proxy:
    api = rule("api", match=ir.RouteMatch(path=ir.PathMatch(type="PathPrefix", value="/api")))
    api = rule(api.name, match=api.match, backends=(to("c"),))
    return Proxy((ir.VirtualHost(hostname="*", routes=(api,)),), {"c": 1})


@on_uvloop
async def test_streams_on_one_connection_retain_nothing() -> None:
    """Streams in turn: a proxied GET, a proxied POST with a body, a 404."""
    proxy = _proxy()
    peer = H2Peer(proxy)
    peer.start()
    respond = _respond_with(OK)

    requests = [(GET, None, b"200"), (POST, b"hello", b"200"), (MISSING, None, b"404")]

    def step() -> None:
        fields, body, status = requests[0]
        requests.append(requests.pop(0))
        stream_id = peer.request(fields, body)
        proxy.answer(respond)
        response = peer.receive()[stream_id]
        assert response.status == status
        assert response.ended

    assert_no_leak(
        retained("HTTP/2 streams", step, warmup=WARMUP, steps=STEPS), floor=STREAMS_FLOOR
    )
    assert proxy.backends.connects == 1


@on_uvloop
async def test_streams_reset_by_the_client_retain_nothing() -> None:
    """The client cancels each stream while its request is upstream."""
    proxy = _proxy()
    peer = H2Peer(proxy)
    peer.start()

    def step() -> None:
        stream_id = peer.request(POST, b"he", end=False)
        ((conn, _),) = proxy.backends.requests()
        peer.reset(stream_id)
        proxy.wire.settle()
        assert conn.closed  # the upstream connection, mid-request, is closed

    assert_no_leak(
        retained("HTTP/2 streams reset", step, warmup=WARMUP, steps=STEPS), floor=STREAMS_FLOOR
    )


def _with_request_id(number: int) -> bytes:
    """OK with a field value never sent before (as a request id, a Date, a cookie are)."""
    return OK.replace(b"\r\n\r\n", b"\r\nx-request-id: %032x\r\n\r\n" % number, 1)


@on_uvloop
async def test_response_fields_do_not_grow_the_header_table() -> None:
    """A client may announce a huge HEADER_TABLE_SIZE; every response carrying a field
    value never seen before (a request id, a Date, a cookie) would then stay in the
    proxy's HPACK encoder table for as long as the connection lives."""
    proxy = _proxy()
    peer = H2Peer(proxy, {0x1: 1 << 30}, decode=False)  # SETTINGS_HEADER_TABLE_SIZE
    peer.start()
    count = [0]

    def respond(conn: UpstreamConnection, request: bytes) -> None:
        count[0] += 1
        conn.data_received(_with_request_id(count[0]))

    def step() -> None:
        stream_id = peer.request(GET)
        assert proxy.answer(respond) == 1
        assert peer.receive()[stream_id].ended

    assert_no_leak(
        retained("HTTP/2 unique response fields", step, warmup=WARMUP, steps=STEPS),
        floor=STREAMS_FLOOR,
    )


@on_uvloop
async def test_connections_retain_nothing() -> None:
    """Open (prior knowledge), one stream, GOAWAY from the client and close."""
    proxy = _proxy()
    respond = _respond_with(OK)
    goaway = bytes.fromhex("000008070000000000") + bytes(8)  # GOAWAY, last stream 0, NO_ERROR

    def step() -> None:
        peer = H2Peer(proxy)
        peer.start()
        stream_id = peer.request(GET)
        assert proxy.answer(respond) == 1
        assert peer.receive()[stream_id].status == b"200"
        peer.send(goaway)  # no stream open: the proxy closes
        assert peer.transport.closed
        proxy.wire.settle()

    # Fewer: a connection costs a few hundred streams' work (h2's set-up).
    assert_no_leak(retained("HTTP/2 connections", step, warmup=50, steps=600))
    assert not proxy.state.connections


# --- the bounds keep the protocol right --------------------------------------------------------


@on_uvloop
async def test_a_client_allowing_a_larger_table_decodes_every_field() -> None:
    """The encoder keeps to MAX_ENCODER_TABLE when the client allows more (RFC 7541 4.2):
    a decoder that accepts the larger table decodes every field, evictions included."""
    proxy = _proxy()
    peer = H2Peer(proxy, {0x1: 1 << 20})
    assert peer.decoder is not None
    peer.decoder.max_allowed_table_size = 1 << 20
    peer.start()
    for number in range(300):  # some 25 KB of fields: the 4 KiB table evicts all along

        def respond(conn: UpstreamConnection, request: bytes, number: int = number) -> None:
            conn.data_received(_with_request_id(number))

        stream_id = peer.request(GET)
        assert proxy.answer(respond) == 1
        response = peer.receive()[stream_id]
        assert response.status == b"200"
        assert (b"x-request-id", b"%032x" % number) in response.fields
    server = peer.transport.get_protocol()
    assert server.h2.encoder.header_table_size == h2base.MAX_ENCODER_TABLE  # type: ignore[attr-defined]


@on_uvloop
async def test_trailers_crossing_our_reset_stay_a_stream_error() -> None:
    """A stream we reset is remembered while frames may still be in flight on it: trailers
    arriving after as many other streams as can be open at once are refused with
    RST_STREAM (STREAM_CLOSED), not with the end of the connection."""
    proxy = _proxy()
    peer = H2Peer(proxy)
    peer.start()
    late = peer.request(MISSING, b"x", end=False)  # answered 404 before its body ended
    assert peer.receive()[late].reset == 0  # RST_STREAM(NO_ERROR), RFC 9113 8.1
    for _ in range(h2base.MAX_CONCURRENT_STREAMS):
        stream_id = peer.request(MISSING)
        assert peer.receive()[stream_id].status == b"404"
    trailers = peer.encoder.encode([(b"x-checksum", b"1")])
    peer.send(HeadersFrame(late, trailers, flags={"END_HEADERS", "END_STREAM"}).serialize())
    assert peer.receive()[late].reset == 5  # STREAM_CLOSED
    assert not peer.goaway
    assert not peer.transport.closed
