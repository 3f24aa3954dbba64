"""HTTP/2 requests h2 accepts but HTTP/1.1 cannot carry are refused, not forwarded.

Found by fuzz/http2_front.py: a :method or :path holding a space or a control character,
a field name that is not a token ("=h"), or a field value holding a control character
other than HTAB, was written as received into the HTTP/1.1 request upstream
("G T /api HTTP/1.1", "GET /a b HTTP/1.1", "=h: trailers"), which splits the request line
or is no field at all, and which the HTTP/1.1 front refuses with 400.
"""

from __future__ import annotations

from typing import Any

import h2.errors
import h2.events
import pytest

from tests.dataplane.test_http2_protocol import Peer, _forwarding_table, fake_upstream


def _peer(users: list[Any]) -> Peer:
    peer = Peer(_forwarding_table(users))
    # The client sends what a hostile one would: h2 must not clean it up on the way out.
    peer.h2.config.validate_outbound_headers = False
    peer.h2.config.normalize_outbound_headers = False
    peer.start()
    return peer


def _send(peer: Peer, fields: list[tuple[bytes, bytes]], *, end: bool = True) -> int:
    stream_id: int = peer.h2.get_next_available_stream_id()
    peer.h2.send_headers(stream_id, fields, end_stream=end)
    peer.send()
    return stream_id


def _head(method: bytes = b"GET", path: bytes = b"/api") -> list[tuple[bytes, bytes]]:
    fields = [(b":method", method), (b":scheme", b"http"), (b":authority", b"a.test")]
    return [*fields, (b":path", path)]


@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        (b"G T", b"/api", []),  # a space: "G T /api HTTP/1.1"
        (b"G\x01T", b"/api", []),
        (b"(GET)", b"/api", []),  # not a token
        (b"G/T", b"/api", []),
        (b"GET", b"/a b", []),  # "GET /a b HTTP/1.1"
        (b"GET", b"/a\tb", []),
        (b"GET", b"/a\x7f", []),
        (b"GET", b"/caf\xc3\xa9", []),  # not percent-encoded (RFC 3986)
        (b"GET", b"/api", [(b"x-a", b"v\x01w")]),
        (b"GET", b"/api", [(b"x-a", b"v\x7f")]),
        (b"GET", b"/api", [(b"cookie", b"a=1"), (b"cookie", b"b=\x1b")]),
        (b"GET", b"/api", [(b"=h", b"trailers")]),  # a name that is not a token
        (b"GET", b"/api", [(b"a,b", b"1")]),
        (b"GET", b"/api", [(b"x(y)", b"1")]),
    ],
)
def test_a_request_http1_cannot_carry_gets_400_and_is_not_forwarded(
    method: bytes, path: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    users: list[Any] = []
    peer = _peer(users)
    stream_id = _send(peer, [*_head(method, path), *extra])
    assert peer.response(stream_id)[b":status"] == b"400"
    assert not users  # nothing went to the backend
    assert not peer.transport.closed  # a bad request, not a bad connection


@pytest.mark.parametrize("method", [b"PROPFIND", b"X-CUSTOM.1", b"get"])
def test_any_token_method_and_tab_in_a_value_are_forwarded(method: bytes) -> None:
    users: list[Any] = []
    peer = _peer(users)
    _send(peer, [*_head(method, b"/a/b%20c?q=1&r=~"), (b"x-a", b"v\tw\x80")])
    (stream,) = users
    upstream, sent = fake_upstream()
    stream.attached(upstream)
    written = b"".join(sent.written)
    assert written.startswith(method + b" /a/b%20c?q=1&r=~ HTTP/1.1\r\n")
    assert b"\r\nx-a: v\tw\x80\r\n" in written


@pytest.mark.parametrize("trailer", [(b"x-sum", b"1\x012"), (b"x@sum", b"1")])
def test_trailers_http1_cannot_carry_reset_the_stream(trailer: tuple[bytes, bytes]) -> None:
    users: list[Any] = []
    peer = _peer(users)
    stream_id = _send(peer, _head(b"POST"), end=False)  # no content-length: chunked upstream
    (stream,) = users
    upstream, sent = fake_upstream()
    stream.attached(upstream)
    peer.h2.send_data(stream_id, b"body")
    peer.h2.send_headers(stream_id, [trailer], end_stream=True)
    peer.send()
    (reset,) = peer.of(h2.events.StreamReset, stream_id)
    assert reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    written = b"".join(sent.written)
    assert trailer[0] not in written  # the trailer section was never written
    assert sent.closed or sent.aborted  # the upstream request cannot be finished: dropped
