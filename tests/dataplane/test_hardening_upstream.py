"""Hardening towards backends: broken response bodies, unsolicited bytes, and filters that
could write CR/LF into a request line, a header or a Location.

Responses are fed whole and one byte at a time, like the client side in test_hardening.
"""

from __future__ import annotations

import logging

import pytest

from turnout import ir
from turnout.dataplane import DataPlane
from turnout.dataplane.filters import PathEdit, Redirect, Rewrite

from .helpers import free_port, request, rule, simple_config, to
from .test_http1_protocol import (
    ROUTES,
    FakeUpstreams,
    _client,
    _feed,
    _responses,
    _table,
    bytewise,
)

pytestmark = pytest.mark.timeout(10)

GET = b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n"
_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
BAD_BODIES = {
    "chunk-size-not-hex": _CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n",
    "chunk-size-overflow": _CHUNKED + b"fffffffffffffffffff\r\n",
    "chunk-size-negative": _CHUNKED + b"-3\r\nabc\r\n0\r\n\r\n",
    "chunk-data-no-crlf": _CHUNKED + b"3\r\nabcX0\r\n\r\n",
    "chunk-ext-bare-lf": _CHUNKED + b"3;a\nb\r\nabc\r\n0\r\n\r\n",
    "trailer-obs-fold": _CHUNKED + b"0\r\nX: a\r\n b\r\n\r\n",
}


@bytewise
@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_broken_response_body_never_reaches_the_client_as_whole(
    name: str, bytewise: bool
) -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(GET)
    ((upstream, upstream_transport),) = fake.connections
    _feed(upstream, BAD_BODIES[name], bytewise)
    assert upstream_transport.aborted and upstream.pool.idle == []  # never reused
    if bytewise:
        # The head went out before the body broke: cutting the connection is the only
        # signal left, and the client must not see a complete response.
        assert transport.aborted
        assert all(not r.complete for r in _responses(transport.data()))
    else:
        # Head and broken body in one read: nothing was written yet, a clean 502.
        (response,) = _responses(transport.data())
        assert response.status == 502 and not transport.closed


UNSOLICITED = {
    # A complete second response after the first, in the same read.
    "whole-extra-response": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
    # The start of one: reused, the connection would give the next request its body.
    "partial-extra-response": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nev",
    "junk-after-response": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokjunk",
}


@pytest.mark.parametrize("name", list(UNSOLICITED))
async def test_bytes_after_a_response_make_the_connection_unusable(name: str) -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(GET)
    ((first, first_transport),) = fake.connections
    first.data_received(UNSOLICITED[name])
    assert [(r.status, r.body) for r in _responses(transport.take())] == [(200, b"ok")]
    assert first_transport.aborted and first.pool.idle == []
    client.data_received(GET)  # the next request gets a fresh connection
    assert len(fake.connections) == 2
    second, second_transport = fake.connections[1]
    assert second_transport.data().startswith(b"GET /api HTTP/1.1\r\n")
    second.data_received(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ngood")
    assert [(r.status, r.body) for r in _responses(transport.take())] == [(201, b"good")]
    assert second.pool.idle == [second]  # a clean connection is reused as before


@pytest.mark.parametrize(
    "trailer", [b"Transfer-Encoding: chunked 1", b"Transfer-Encoding: x", b"Connection: close"]
)
async def test_a_trailer_that_ends_the_connection_keeps_it_out_of_the_pool(
    trailer: bytes,
) -> None:
    # llhttp reads such a trailer field as the end of the connection and refuses the next
    # response on it: pooled, the connection gave the next request a 502 (found by
    # fuzz/upstream_response.py).
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(GET)
    ((first, _),) = fake.connections
    first.data_received(_CHUNKED + b"2\r\nok\r\n0\r\n" + trailer + b"\r\n\r\n")
    assert [(r.status, r.body) for r in _responses(transport.take())] == [(200, b"ok")]
    assert first.pool.idle == [] and first.closed
    client.data_received(GET)
    assert len(fake.connections) == 2  # a fresh connection
    second, _ = fake.connections[1]
    second.data_received(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ngood")
    assert [(r.status, r.body) for r in _responses(transport.take())] == [(201, b"good")]


async def test_an_ordinary_trailer_keeps_the_connection_reusable() -> None:
    fake = FakeUpstreams()
    client, _transport = _client(_table(ROUTES, fake))
    client.data_received(GET)
    ((upstream, _),) = fake.connections
    upstream.data_received(_CHUNKED + b"2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n")
    assert upstream.pool.idle == [upstream]


async def test_bytes_on_an_idle_connection_close_it() -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(GET)
    ((upstream, upstream_transport),) = fake.connections
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert upstream.pool.idle == [upstream]
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
    assert upstream_transport.aborted and upstream.closed  # the pool skips closed ones
    client.data_received(GET)
    assert len(fake.connections) == 2
    assert [r.body for r in _responses(transport.data())] == [b"ok"]


@bytewise
async def test_response_after_a_head_response_is_not_mistaken_for_a_body(
    bytewise: bool,
) -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    client.data_received(b"HEAD /api HTTP/1.1\r\nHost: a\r\n\r\n")
    ((upstream, _),) = fake.connections
    _feed(upstream, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", bytewise)
    client.data_received(GET)
    assert len(fake.connections) == 1  # reused: a HEAD response has no body
    _feed(upstream, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", bytewise)
    data = transport.data()
    assert data.count(b"HTTP/1.1 200 OK") == 2 and data.endswith(b"\r\n\r\nok")


# --- request framing as the upstream sees it ----------------------------------------------


@bytewise
async def test_content_length_is_forwarded_without_whitespace(bytewise: bool) -> None:
    fake = FakeUpstreams()
    client, _ = _client(_table(ROUTES, fake))
    _feed(client, b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length:  3 \t\r\n\r\nabc", bytewise)
    ((_, upstream_transport),) = fake.connections
    assert b"\r\nContent-Length: 3\r\n" in upstream_transport.data()


@bytewise
async def test_chunk_extensions_are_not_forwarded(bytewise: bool) -> None:
    fake = FakeUpstreams()
    client, _ = _client(_table(ROUTES, fake))
    body = b"3;" + b"x" * 2_000 + b'\r\nabc\r\n2;q="a"\r\nde\r\n0;z\r\n\r\n'
    head = b"POST /api HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    _feed(client, head + body, bytewise)
    ((_, upstream_transport),) = fake.connections
    forwarded = upstream_transport.data().split(b"\r\n\r\n", 1)[1]
    assert b";" not in forwarded and b"x" not in forwarded
    assert forwarded.replace(b"\r\n", b"|").endswith(b"|0||")


@bytewise
async def test_absolute_form_authority_replaces_host(bytewise: bool) -> None:
    fake = FakeUpstreams()
    client, _ = _client(_table(ROUTES, fake))
    _feed(client, b"GET http://b.example:8080/api?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", bytewise)
    ((_, upstream_transport),) = fake.connections
    assert upstream_transport.data().startswith(
        b"GET /api?q=1 HTTP/1.1\r\nhost: b.example:8080\r\n"
    )


async def test_error_stops_pipelined_requests_before_anything_is_forwarded() -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(ROUTES, fake))
    smuggled = b"GET /api/admin HTTP/1.1\r\nHost: a\r\n\r\n"
    client.data_received(
        b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled + GET
    )
    assert [r.status for r in _responses(transport.data())] == [400]
    assert transport.closed and fake.connections == []
    client.data_received(GET)  # a read already under way: ignored
    assert fake.connections == [] and len(_responses(transport.data())) == 1


# --- filters cannot write CR/LF/NUL into a request line, header or Location --------------

_HOSTILE = ["a\r\nx-injected: 1", "a\nb", "a\rb", "a\x00b", "a b", "a?b", "a#b", "a\tb"]


@pytest.mark.parametrize("bad", _HOSTILE)
def test_path_and_hostname_filters_refuse_framing_characters(bad: str) -> None:
    with pytest.raises(ValueError):
        PathEdit(ir.PathModifier(type="ReplaceFullPath", value="/" + bad))
    with pytest.raises(ValueError):
        PathEdit(ir.PathModifier(type="ReplacePrefixMatch", value="/" + bad, prefix="/p"))
    with pytest.raises(ValueError):
        Redirect(ir.RequestRedirect(hostname=bad), listener_scheme="http", spec_port=80)
    with pytest.raises(ValueError):
        Rewrite(ir.URLRewrite(hostname=bad))


def test_valid_filter_values_are_kept() -> None:
    redirect = Redirect(
        ir.RequestRedirect(
            hostname="b.example", path=ir.PathModifier(type="ReplaceFullPath", value="/a%20b")
        ),
        listener_scheme="http",
        spec_port=80,
    )
    assert redirect.location(b"a", b"/x", b"q") == b"http://b.example/a%20b?q"
    assert Rewrite(ir.URLRewrite(hostname="[::1]")).hostname == b"[::1]"


def _filtered_route(filters: ir.Filters) -> tuple[ir.HTTPRouteRule, ...]:
    return (rule("bad", backends=(to("c"),), filters=filters),)


@pytest.mark.parametrize(
    "filters",
    [
        ir.Filters(redirect=ir.RequestRedirect(hostname="a\r\nset-cookie: x")),
        ir.Filters(rewrite=ir.URLRewrite(path=ir.PathModifier("ReplaceFullPath", "/a\r\nX: y"))),
        ir.Filters(request_headers=ir.HeaderModifier(set=(("x-a", "b\r\nx-b: c"),))),
    ],
    ids=["redirect-hostname", "rewrite-path", "header-value"],
)
async def test_hostile_filter_in_the_ir_gives_500_not_a_split_message(
    filters: ir.Filters,
) -> None:
    fake = FakeUpstreams()
    client, transport = _client(_table(_filtered_route(filters), fake))
    client.data_received(GET)
    (response,) = _responses(transport.data())
    assert response.status == 500 and fake.connections == []
    assert b"set-cookie" not in transport.data() and b"\r\nX: y" not in transport.data()


@pytest.mark.parametrize("host", [b"a b", b"a\xff", b"a/b", b"a@b", b"[", b"a:b:c]", b""], ids=repr)
async def test_invalid_host_never_reaches_a_location(host: bytes) -> None:
    client, transport = _client(_table(ROUTES, FakeUpstreams()))
    client.data_received(b"GET /old HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    (response,) = _responses(transport.data())
    assert response.status == 400 and response.header("location") is None


async def test_dataplane_logs_and_serves_500_for_a_hostile_filter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Through real sockets: the control plane never emits this, but if an IR did, the
    # rule answers 500 (no injected header on the wire) and the reason is logged.
    port = free_port()
    routes = (
        rule("r", filters=ir.Filters(redirect=ir.RequestRedirect(hostname="a\r\nx-evil: 1"))),
    )
    dataplane = DataPlane()
    try:
        with caplog.at_level(logging.ERROR, logger="turnout.dataplane.server"):
            await dataplane.apply(simple_config(port, routes))
        assert any("is not a valid hostname" in r.getMessage() for r in caplog.records)
        response = await request("127.0.0.1", port, "/x")
        assert response.status == 500 and response.header("x-evil") is None
    finally:
        await dataplane.close(drain_timeout=1.0)
