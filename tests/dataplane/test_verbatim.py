"""Heads passed on as received: the fast path, and every case that must not take it.

A request whose fields all go upstream unchanged is forwarded as the client sent it plus
the proxy's X-Forwarded-* fields (``msg.verbatim_request_head``); a response that needs
no change is written to the client as the backend sent it, as the very read it came in
when that read is exactly the response (``UpstreamConnection.whole_message``). These
tests pin both the byte-exact results of the fast path (which the rebuilt heads differ
from: "host:" first, lower-case names) and the cases where bytes as received would be
wrong: a head that began in an earlier read, pipelined heads, bytes llhttp skips or
tolerates, hop-by-hop fields, filters, framing changes, trailing bytes.
"""

from __future__ import annotations

import pytest

from turnout import ir
from turnout.dataplane.upstream import UpstreamConnection

from .helpers import rule, to
from .test_http1_protocol import (
    ROUTES,
    FakeTransport,
    FakeUpstreams,
    _client,
    _feed,
    _responses,
    _table,
)

FORWARDED = b"x-forwarded-for: 10.1.2.3\r\nx-forwarded-proto: http\r\n\r\n"
bytewise = pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])


def _upstream_request(request: bytes, *, bytewise: bool = False) -> bytes:
    fake = FakeUpstreams()
    client, _ = _client(_table(ROUTES, fake))
    _feed(client, request, bytewise)
    ((_, upstream_transport),) = fake.connections
    return upstream_transport.take()


# --- requests ---------------------------------------------------------------------------------


async def test_plain_request_is_forwarded_as_received() -> None:
    head = b"GET /api/x?q=1 HTTP/1.1\r\nHost: a.example\r\nUser-Agent: UA/1\r\nX-Case: MiXeD\r\n"
    assert _upstream_request(head + b"\r\n") == head + FORWARDED


@bytewise
async def test_request_split_across_reads_is_rebuilt_with_every_field(bytewise: bool) -> None:
    # Bytewise, every head ends in a read of its own: rebuilt, never cut.
    sent = _upstream_request(
        b"GET /api/x HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Two: 2\r\n\r\n", bytewise=bytewise
    )
    lines = sent.split(b"\r\n")
    assert lines[0] == b"GET /api/x HTTP/1.1"
    assert {b"X-One: 1", b"X-Two: 2"} <= set(lines)
    assert b"host: a" in lines or b"Host: a" in lines


async def test_head_that_began_in_an_earlier_read_is_not_taken_from_the_last_one() -> None:
    # The second read starts with a copy of the request line, as the value of X: it is not
    # where the head began, and the fields before it must not be lost.
    fake = FakeUpstreams()
    client, _ = _client(_table(ROUTES, fake))
    client.data_received(b"GET /api HTTP/1.1\r\nX-Early: 1\r\nX: ")
    client.data_received(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
    ((_, upstream_transport),) = fake.connections
    lines = upstream_transport.take().split(b"\r\n")
    assert lines[0] == b"GET /api HTTP/1.1"
    assert b"X-Early: 1" in lines and b"X: GET /api HTTP/1.1" in lines


async def test_pipelined_heads_with_the_same_request_line_keep_their_own_fields() -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(
        b"GET /api HTTP/1.1\r\nHost: a\r\n\r\nGET /api HTTP/1.1\r\nHost: a\r\nX-Second: 2\r\n\r\n"
    )
    ((upstream, upstream_transport),) = fake.connections
    assert upstream_transport.take() == b"GET /api HTTP/1.1\r\nHost: a\r\n" + FORWARDED
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    # (on a new connection: the first one is released once its read is parsed)
    second = fake.connections[-1][1].take().split(b"\r\n")
    assert b"X-Second: 2" in second
    assert [r.status for r in _responses(transport.data())] == [200]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\r\nGET /api HTTP/1.1\r\nHost: a\r\n\r\n",  # an empty line llhttp skips
        b"GET  /api HTTP/1.1\r\nHost: a\r\n\r\n",  # two spaces, which llhttp accepts
    ],
    ids=["leading-empty-line", "double-space"],
)
async def test_tolerated_request_lines_are_rebuilt(request_bytes: bytes) -> None:
    sent = _upstream_request(request_bytes)
    assert sent == b"GET /api HTTP/1.1\r\nhost: a\r\n" + FORWARDED


@pytest.mark.parametrize(
    ("field", "absent"),
    [
        (b"Connection: keep-alive\r\n", b"Connection"),
        (b"X-Forwarded-For: 192.0.2.1\r\n", b"X-Forwarded-For"),
        (b"Keep-Alive: 5\r\n", b"Keep-Alive"),
    ],
)
async def test_requests_with_fields_to_take_out_are_rebuilt(field: bytes, absent: bytes) -> None:
    sent = _upstream_request(b"GET /api HTTP/1.1\r\nHost: a\r\n" + field + b"\r\n")
    assert absent not in sent
    assert sent.startswith(b"GET /api HTTP/1.1\r\nhost: a\r\n")


async def test_request_with_a_body_is_rebuilt() -> None:
    sent = _upstream_request(b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 2 \r\n\r\nok")
    assert sent == (
        b"POST /api HTTP/1.1\r\nhost: a\r\nContent-Length: 2\r\n"
        b"x-forwarded-for: 10.1.2.3\r\nx-forwarded-proto: http\r\n\r\nok"
    )


async def test_request_header_filter_still_applies() -> None:
    modified = rule(
        "modified",
        backends=(to("c"),),
        filters=ir.Filters(request_headers=ir.HeaderModifier(set=(("x-set", "v"),))),
    )
    fake = FakeUpstreams()
    client, _ = _client(_table((modified,), fake))
    client.data_received(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    ((_, upstream_transport),) = fake.connections
    assert b"x-set: v\r\n" in upstream_transport.take()


# --- responses --------------------------------------------------------------------------------


def _proxied(
    request: bytes = b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n",
    routes: tuple[ir.HTTPRouteRule, ...] = ROUTES,
) -> tuple[UpstreamConnection, FakeTransport]:
    """A request forwarded to a fake upstream: its connection and the client transport."""
    fake = FakeUpstreams()
    client, transport = _client(_table(routes, fake))
    client.data_received(request)
    ((upstream, upstream_transport),) = fake.connections
    upstream_transport.take()
    return upstream, transport


async def test_response_in_one_read_is_written_as_that_read() -> None:
    upstream, transport = _proxied()
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Case: MiXeD\r\n\r\nhello"
    upstream.data_received(response)
    assert transport.written == [response]
    assert transport.written[0] is response  # not a copy
    assert upstream.pool.idle == [upstream]


@bytewise
async def test_response_across_reads_is_passed_on_intact(bytewise: bool) -> None:
    # Bytewise, the head is rebuilt field by field: the same bytes as received here.
    upstream, transport = _proxied()
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Case: MiXeD\r\n\r\nhello"
    _feed(upstream, response, bytewise)
    assert transport.data() == response
    assert upstream.pool.idle == [upstream]


async def test_bytes_after_the_response_never_reach_the_client() -> None:
    upstream, transport = _proxied()
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    upstream.data_received(response + b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
    assert transport.data() == response
    assert upstream.closed and upstream.pool.idle == []


@pytest.mark.parametrize(
    ("response", "expected_head"),
    [
        (  # hop-by-hop fields are taken out
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
            b"Content-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
        ),
        (  # an HTTP/1.0 status line is the client's HTTP/1.1
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
        ),
        (  # an empty line before the status line, which llhttp skips
            b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
        ),
        (  # a body without Content-Length is re-framed
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        ),
    ],
    ids=["hop-by-hop", "http10", "leading-empty-line", "chunked"],
)
async def test_responses_that_need_a_change_are_rebuilt(
    response: bytes, expected_head: bytes
) -> None:
    upstream, transport = _proxied()
    upstream.data_received(response)
    assert transport.data().startswith(expected_head)
    (parsed,) = _responses(transport.data())
    assert parsed.body == b"ok"


async def test_interim_and_final_response_in_one_read() -> None:
    upstream, transport = _proxied()
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    upstream.data_received(b"HTTP/1.1 100 Continue\r\n\r\n" + final)
    assert transport.data() == b"HTTP/1.1 100 Continue\r\n\r\n" + final


async def test_client_closing_gets_connection_close() -> None:
    upstream, transport = _proxied(b"GET /api HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert (
        transport.data() == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nconnection: close\r\n\r\nok"
    )


async def test_head_request_response_is_rebuilt() -> None:
    upstream, transport = _proxied(b"HEAD /api HTTP/1.1\r\nHost: a\r\n\r\n")
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
    assert transport.data() == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"


async def test_response_header_filter_still_applies() -> None:
    modified = rule(
        "modified",
        backends=(to("c"),),
        filters=ir.Filters(response_headers=ir.HeaderModifier(set=(("x-set", "v"),))),
    )
    upstream, transport = _proxied(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", (modified,))
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    (parsed,) = _responses(transport.data())
    assert parsed.header("x-set") == "v" and parsed.body == b"ok"


def test_lower_names_by_position() -> None:
    """LowerNames remembers each position's name: a name that changes place, or another
    name at a position, is lowered afresh, never answered with the old position's."""
    from turnout.dataplane.messages import LowerNames

    names = LowerNames()
    assert [names.lower(i, n) for i, n in enumerate([b"Host", b"X-A"])] == [b"host", b"x-a"]
    assert [names.lower(i, n) for i, n in enumerate([b"X-A", b"Host"])] == [b"x-a", b"host"]
    assert [names.lower(i, n) for i, n in enumerate([b"X-a", b"HOST", b"Te"])] == [
        b"x-a",
        b"host",
        b"te",
    ]
    # Positions past the bound, and a message skipping positions, are lowered each time.
    assert names.lower(100, b"Connection") == b"connection"
    assert names.lower(100, b"Upgrade") == b"upgrade"
