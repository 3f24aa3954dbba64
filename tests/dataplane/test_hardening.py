"""Hardening: limits, timeouts and request-smuggling defences, as raw bytes.

Every malformed request is fed whole and one byte at a time; each must give one
well-formed error response followed by a close, and nothing may reach an upstream. A
broken body of a request already being forwarded (status None below) aborts both
connections instead: part of it is upstream, there is no clean way back.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from turnout import ir
from turnout.dataplane.filters import HeaderEdit
from turnout.dataplane.http1 import PREFACE, ClientConnection, SocketState
from turnout.dataplane.limits import Limits

from .test_http1_protocol import (
    ROUTES,
    FakeTransport,
    FakeUpstreams,
    _client,
    _feed,
    _responses,
    _table,
    bytewise,
)

pytestmark = pytest.mark.timeout(10)

_H = b"Host: a\r\n"
REJECTED = {
    # framing that could be read two ways (request smuggling)
    "cl-and-te": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: 3\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "duplicate-cl": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: 3\r\n"
                     b"Content-Length: 4\r\n\r\nabcd", 400),
    "same-cl-twice": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: 3\r\n"
                      b"Content-Length: 3\r\n\r\nabc", 400),
    "cl-list": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: 3, 3\r\n\r\nabc", 400),
    "cl-negative": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: -3\r\n\r\nabc", 400),
    "cl-plus": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: +3\r\n\r\nabc", 400),
    "te-gzip": (b"POST /api HTTP/1.1\r\n" + _H + b"Transfer-Encoding: gzip\r\n\r\nabc", 400),
    "te-gzip-chunked": (b"POST /api HTTP/1.1\r\n" + _H +
                        b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    "te-chunked-gzip": (b"POST /api HTTP/1.1\r\n" + _H +
                        b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    "te-twice": (b"POST /api HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te-in-http10": (b"POST /api HTTP/1.0\r\n" + _H +
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "bad-chunk-size": (b"POST /api HTTP/1.1\r\n" + _H +
                       b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", None),
    "chunk-size-overflow": (b"POST /api HTTP/1.1\r\n" + _H +
                            b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", None),
    "chunk-lf-only": (b"POST /api HTTP/1.1\r\n" + _H +
                      b"Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", None),
    "obs-fold": (b"GET /api HTTP/1.1\r\n" + _H + b"X-A: b\r\n c\r\n\r\n", 400),
    "obs-fold-tab": (b"GET /api HTTP/1.1\r\n" + _H + b"X-A: b\r\n\tc\r\n\r\n", 400),
    "nul-in-value": (b"GET /api HTTP/1.1\r\n" + _H + b"X-A: b\x00c\r\n\r\n", 400),
    "cr-in-value": (b"GET /api HTTP/1.1\r\n" + _H + b"X-A: b\rc\r\n\r\n", 400),
    "ctl-in-value": (b"GET /api HTTP/1.1\r\n" + _H + b"X-A: b\x01c\r\n\r\n", 400),
    "space-in-name": (b"GET /api HTTP/1.1\r\n" + _H + b"X A: b\r\n\r\n", 400),
    "space-before-colon": (b"GET /api HTTP/1.1\r\n" + _H + b"X-A : b\r\n\r\n", 400),
    "nul-in-name": (b"GET /api HTTP/1.1\r\n" + _H + b"X\x00A: b\r\n\r\n", 400),
    "bare-lf": (b"GET /api HTTP/1.1\n" + b"Host: a\n\n", 400),
    "ctl-in-target": (b"GET /a\x01b HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "two-hosts": (b"GET /api HTTP/1.1\r\n" + _H + b"Host: b\r\n\r\n", 400),
    "cl-hex": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: 0x3\r\n\r\nabc", 400),
    "cl-inner-space": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: 1 2\r\n\r\nabc", 400),
    "cl-empty": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: \r\n\r\nabc", 400),
    "cl-overflow": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length: " + b"9" * 30
                    + b"\r\n\r\nabc", 400),
    "cl-space-before-colon": (b"POST /api HTTP/1.1\r\n" + _H + b"Content-Length : 3\r\n\r\nabc",
                              400),
    "te-space-before-colon": (b"POST /api HTTP/1.1\r\n" + _H +
                              b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    "te-identity": (b"POST /api HTTP/1.1\r\n" + _H + b"Transfer-Encoding: identity\r\n\r\n", 400),
    "te-xchunked": (b"POST /api HTTP/1.1\r\n" + _H +
                    b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    "te-chunked-comma": (b"POST /api HTTP/1.1\r\n" + _H +
                         b"Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400),
    "te-empty": (b"POST /api HTTP/1.1\r\n" + _H + b"Transfer-Encoding: \r\n\r\n", 400),
    "chunk-data-no-crlf": (b"POST /api HTTP/1.1\r\n" + _H +
                           b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n", None),
    "chunk-size-negative": (b"POST /api HTTP/1.1\r\n" + _H +
                            b"Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", None),
    "chunk-size-0x": (b"POST /api HTTP/1.1\r\n" + _H +
                      b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", None),
    "chunk-size-space": (b"POST /api HTTP/1.1\r\n" + _H +
                         b"Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", None),
    "chunk-ext-bare-lf": (b"POST /api HTTP/1.1\r\n" + _H +
                          b"Transfer-Encoding: chunked\r\n\r\n3;a\nb\r\nabc\r\n0\r\n\r\n", None),
    "chunk-ext-bare-cr": (b"POST /api HTTP/1.1\r\n" + _H +
                          b"Transfer-Encoding: chunked\r\n\r\n3;a\rb\r\nabc\r\n0\r\n\r\n", None),
    "trailer-obs-fold": (b"POST /api HTTP/1.1\r\n" + _H +
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", None),
    "trailer-nul": (b"POST /api HTTP/1.1\r\n" + _H +
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\x00\r\n\r\n", None),
    "lf-in-value": (b"GET /api HTTP/1.1\r\n" + _H + b"X-A: b\nX-B: c\r\n\r\n", 400),
    "bare-cr-line-end": (b"GET /api HTTP/1.1\r" + _H + b"\r\n", 400),
    "lower-case-method": (b"get /api HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "space-in-target": (b"GET /a b HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "bad-version": (b"GET /api HTTP/1.11\r\n" + _H + b"\r\n", 400),
    "http-0.9": (b"GET /api\r\n\r\n", 505),
    # request targets (RFC 9112 3.2) and Host (RFC 9110 7.2)
    "fragment": (b"GET /api#x HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "relative-target": (b"GET api HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "asterisk-not-options": (b"GET * HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "absolute-userinfo": (b"GET http://u@a/api HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "absolute-ftp": (b"GET ftp://a/api HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "absolute-no-host": (b"GET http:///api HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "absolute-bad-host": (b"GET http://[/api HTTP/1.1\r\n" + _H + b"\r\n", 400),
    "host-with-space": (b"GET /old HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    "host-with-slash": (b"GET /old HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    "host-obs-text": (b"GET /old HTTP/1.1\r\nHost: a\xffb\r\n\r\n", 400),
    "host-empty": (b"GET /old HTTP/1.1\r\nHost:\r\n\r\n", 400),
    "host-del": (b"GET /old HTTP/1.1\r\nHost: a\x7fb\r\n\r\n", 400),
    "no-host-http11": (b"GET /api HTTP/1.1\r\n\r\n", 400),
    "http-2.0": (b"GET /api HTTP/2.0\r\n" + _H + b"\r\n", 505),
    # limits
    "target-over-8k": (b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\n" + _H + b"\r\n", 414),
    "101-fields": (b"GET /api HTTP/1.1\r\n" + _H + b"X-A: 1\r\n" * 100 + b"\r\n", 431),
    "head-over-64k": (b"GET /api HTTP/1.1\r\n" + _H + (b"X-A: " + b"a" * 1000 + b"\r\n") * 66
                      + b"\r\n", 431),
}  # fmt: skip


@bytewise
@pytest.mark.parametrize("name", list(REJECTED))
async def test_rejected_request_gets_error_and_close(name: str, bytewise: bool) -> None:
    data, status = REJECTED[name]
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    _feed(client, data, bytewise)
    responses = _responses(transport.data())
    if status is None:
        assert responses == [] and transport.aborted
        client.connection_lost(None)
        assert all(upstream.aborted for _, upstream in fake.connections)
        return
    assert [r.status for r in responses] == [status]
    assert responses[0].header("connection") == "close"
    assert transport.closed
    assert fake.connections == []  # nothing was forwarded


@bytewise
async def test_rejection_after_a_good_request_keeps_order(bytewise: bool) -> None:
    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    _feed(client, b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n" + REJECTED["cl-and-te"][0], bytewise)
    assert [r.status for r in _responses(transport.data())] == [418, 400]
    assert transport.closed


@pytest.mark.parametrize("name", [n for n in REJECTED if n.startswith(("host-", "two-hosts"))])
async def test_bad_host_after_a_good_one_is_rejected(name: str) -> None:
    """The connection remembers its last valid Host (a compare instead of a lookup):
    a different, invalid one later on the same connection still gets its 400."""
    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    client.data_received(b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n")
    client.data_received(REJECTED[name][0])
    assert [r.status for r in _responses(transport.data())] == [418, 400]
    assert transport.closed


@bytewise
async def test_within_limits_is_served(bytewise: bool) -> None:
    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    _feed(
        client,
        b"GET /teapot?" + b"a" * 8000 + b" HTTP/1.1\r\n" + _H + b"X-A: 1\r\n" * 99 + b"\r\n"
        b"GET /teapot HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n"
        b"GET /teapot HTTP/1.1\r\nHost: a\r\nX-A: \xff obs-text\r\n\r\n"
        b"\r\nGET /teapot HTTP/1.0\r\n\r\n",
        bytewise,
    )
    assert [r.status for r in _responses(transport.data())] == [418, 418, 418, 418]


# --- timers and the connection limit (need a running loop: the watchdog) ------------------


def _state(limits: Limits) -> SocketState:
    state = _table(ROUTES, FakeUpstreams())
    return SocketState(state.table, limits)


async def _wait_closed(transport: FakeTransport, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not transport.closed:
            await asyncio.sleep(0.01)


async def test_head_not_finished_in_time_gets_408() -> None:
    client, transport = _client(_state(Limits(header_timeout=0.2)))
    client.data_received(b"GET /teapot HTTP/1.1\r\nHost: a\r\n")
    await _wait_closed(transport)
    (response,) = _responses(transport.data())
    assert response.status == 408 and response.header("connection") == "close"
    client.connection_lost(None)


async def test_trickling_bytes_do_not_extend_the_header_timeout() -> None:
    # Slowloris: a byte now and then must not keep the connection: the deadline runs from
    # the start of the head, not from the last byte.
    client, transport = _client(_state(Limits(header_timeout=0.3)))
    head = b"GET /teapot HTTP/1.1\r\nHost: a\r\n" + b"X-A: b\r\n" * 20
    sent = 0
    async with asyncio.timeout(5.0):
        while not transport.closed:
            client.data_received(head[sent : sent + 1])
            sent += 1
            await asyncio.sleep(0.02)
    assert sent < len(head)  # closed while the head was still trickling in
    (response,) = _responses(transport.data())
    assert response.status == 408 and response.header("connection") == "close"
    client.connection_lost(None)


async def test_next_head_on_a_keep_alive_connection_is_timed_too() -> None:
    client, transport = _client(_state(Limits(header_timeout=0.3, idle_timeout=30.0)))
    client.data_received(b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [r.status for r in _responses(transport.take())] == [418]
    client.data_received(b"GET /teapot HTTP/1.1\r\n")  # and then nothing more
    await _wait_closed(transport)
    assert [r.status for r in _responses(transport.data())] == [408]
    client.connection_lost(None)


async def test_silent_connection_is_closed_without_a_response() -> None:
    client, transport = _client(_state(Limits(header_timeout=0.2)))
    await _wait_closed(transport)
    assert transport.data() == b""
    client.connection_lost(None)


async def test_idle_keep_alive_connection_closes_after_idle_timeout() -> None:
    client, transport = _client(_state(Limits(header_timeout=5.0, idle_timeout=0.3)))
    client.data_received(b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [r.status for r in _responses(transport.take())] == [418]
    await _wait_closed(transport)
    assert transport.data() == b""  # idle: no 408, just closed
    client.connection_lost(None)


async def test_busy_connection_is_not_timed_out() -> None:
    fake = FakeUpstreams()
    state = _table(ROUTES, fake)
    client, transport = _client(SocketState(state.table, Limits(header_timeout=0.1)))
    client.data_received(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
    await asyncio.sleep(0.4)  # the upstream is slow: the head timeout no longer applies
    assert not transport.closed
    ((upstream, _),) = fake.connections
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert [r.status for r in _responses(transport.data())] == [200]
    client.connection_lost(None)


async def test_connections_over_the_limit_are_shed() -> None:
    state = _state(Limits(max_connections=2))
    first, second = _client(state), _client(state)
    third_client, third = _client(state)
    assert third.aborted and not first[1].closed and not second[1].closed
    third_client.connection_lost(None)
    first[0].connection_lost(None)  # a slot frees up
    fourth_client, fourth = _client(state)
    assert not fourth.closed
    fourth_client.data_received(b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [r.status for r in _responses(fourth.data())] == [418]
    second[0].data_received(b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [r.status for r in _responses(second[1].data())] == [418]  # unaffected
    for conn in (second[0], fourth_client):
        conn.connection_lost(None)


# --- upstream responses get the same strictness ---------------------------------------------

BAD_RESPONSES = {
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "duplicate-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "te-gzip-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n",
    "nul-in-value": b"HTTP/1.1 200 OK\r\nX-A: b\x00c\r\nContent-Length: 0\r\n\r\n",
    "bad-status": b"HTTP/1.1 99 OK\r\nContent-Length: 0\r\n\r\n",
    "1xx-with-length": b"HTTP/1.1 179 OK\r\nContent-Length: 2\r\n\r\nok",
    "100-with-length": b"HTTP/1.1 100 Continue\r\nContent-Length: 2\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "103-chunked": b"HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "status-020": b"HTTP/1.1 020 OK\r\nContent-Length: 0\r\n\r\n",
    "status-600": b"HTTP/1.1 600 OK\r\nContent-Length: 0\r\n\r\n",
    "status-999": b"HTTP/1.1 999 OK\r\nContent-Length: 0\r\n\r\n",
    "cl-negative": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "cl-hex": b"HTTP/1.1 200 OK\r\nContent-Length: 0x3\r\n\r\nabc",
    "cl-list": b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
    "te-space-before-colon": b"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "cr-in-value": b"HTTP/1.1 200 OK\r\nX-A: b\rc\r\nContent-Length: 2\r\n\r\nok",
    "space-in-name": b"HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 2\r\n\r\nok",
    "huge-head": b"HTTP/1.1 200 OK\r\n" + b"X-A: " + b"a" * 70000 + b"\r\n",
    "many-fields": b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 201 + b"\r\n",
}


@bytewise
@pytest.mark.parametrize("name", list(BAD_RESPONSES))
async def test_malformed_upstream_response_gives_502(name: str, bytewise: bool) -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
    ((upstream, upstream_transport),) = fake.connections
    _feed(upstream, BAD_RESPONSES[name], bytewise)
    (response,) = _responses(transport.data())
    assert response.status == 502
    assert upstream_transport.aborted and upstream.pool.idle == []
    assert not transport.closed  # the client connection is fine
    assert len(fake.connections) == 1  # a broken response is not retried


# --- filters cannot break the framing -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [("x-a", "b\r\nx-injected: 1"), ("x-a", "b\nc"), ("x-a", "b\x00"), ("x a", "b"), ("", "b")],
)
def test_header_modifier_refuses_framing_characters(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        HeaderEdit.compile(ir.HeaderModifier(set=((name, value),)))
    with pytest.raises(ValueError):
        HeaderEdit.compile(ir.HeaderModifier(add=((name, value),)))


# --- anything goes in, a well-formed response or a close comes out -------------------------

_FRAGMENTS = [
    b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: a\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 3, 4\r\n",
    b"Host: b\r\n",
    b"X-A: b\r\n c\r\n",
    b"\r\n",
    b"5\r\nhello\r\n",
    b"0\r\n\r\n",
    b"HTTP/1.0",
    b"\x00",
    b"\r",
    b"\n",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(
        st.one_of(st.binary(max_size=32), st.sampled_from(_FRAGMENTS)),
        max_size=16,
    )
)
def test_any_bytes_give_well_formed_responses(chunks: list[bytes]) -> None:
    # The HTTP/2 preface hands the connection over to HTTP/2 (test_http2_protocol.py):
    # what comes out is then not HTTP/1.1. Hypothesis finds it among the code's literals.
    assume(not b"".join(chunks).startswith(PREFACE))
    fake = FakeUpstreams()
    state = _table(ROUTES, fake)
    client = ClientConnection(state)
    transport = FakeTransport()
    client.connection_made(transport)  # type: ignore[arg-type]
    for chunk in chunks:
        client.data_received(chunk)  # must never raise
    if getattr(transport, "protocol", None) is not None:
        return  # the HTTP/2 preface: http2 took the connection over, it answers in frames
    data = transport.data()
    responses = _responses(data)  # parses: well-formed
    if responses:
        framed = b"".join(f"HTTP/1.1 {r.status}".encode() for r in responses)
        assert framed.count(b"HTTP/1.1") == len(responses)
    for response in responses:
        assert response.status in (301, 400, 404, 414, 418, 431, 503, 505)
        if response.status >= 400 and response.status != 404 and response.status != 503:
            assert response.header("connection") == "close" or response.status == 418
    for _, upstream_transport in fake.connections:
        head = upstream_transport.data().split(b"\r\n\r\n", 1)[0]
        assert b"\r\n " not in head and b"\x00" not in head  # nothing hostile forwarded
