"""RequestMirror on HTTP/2 streams: the copy gets the request head and the whole body,
framed as for the primary backend (a gRPC call has no content-length: chunked)."""

from __future__ import annotations

from typing import Any

import h2.events

from tests.dataplane.test_http2_protocol import Peer, fake_upstream
from tests.dataplane.test_mirror import _connection
from turnout.dataplane.router import (
    HostMap,
    ListenerTable,
    Mirror,
    Rule,
    SocketTable,
    Target,
    VirtualHostTable,
)
from turnout.dataplane.upstream import EndpointPool, UpstreamCluster


def _mirrored_table(users: list[Any], copies: list[Any]) -> SocketTable:
    """Every request goes to one endpoint and is mirrored to another; connects are held."""
    pool = EndpointPool("127.0.0.1", 9, connector=lambda _pool, user: users.append(user))
    mirror_pool = EndpointPool("127.0.0.2", 9, connector=lambda _pool, user: copies.append(user))
    mirror = Mirror(UpstreamCluster("m", (mirror_pool,)), 1.0)
    target = Target(cluster=UpstreamCluster("c", (pool,)), mirrors=(mirror,))
    table = SocketTable()
    vhosts: HostMap[VirtualHostTable] = HostMap()
    vhosts.add(None, VirtualHostTable((Rule("all", lambda _path: True, (), [(1, target)]),)))
    table.listeners.add(None, ListenerTable("default/gw/http", vhosts))
    return table


def _grpc_call(peer: Peer, body: list[bytes]) -> int:
    sid = peer.request(
        "/pkg.Svc/Call",
        end=False,
        extra=[("content-type", "application/grpc"), ("te", "trailers")],
    )
    peer.send()
    for piece in body:
        peer.h2.send_data(sid, piece)
    peer.h2.end_stream(sid)
    peer.send()
    return sid


async def test_mirror_gets_head_and_chunked_body() -> None:
    users: list[Any] = []
    copies: list[Any] = []
    peer = Peer(_mirrored_table(users, copies))
    peer.start()
    _grpc_call(peer, [b"\x00\x00\x00\x00\x02hi", b"\x00\x00\x00\x00\x03abc"])
    (stream,) = users
    (copy,) = copies
    conn, transport = _connection(EndpointPool("127.0.0.2", 9))
    copy.attached(conn)
    mirrored = b"".join(transport.written)
    assert mirrored.startswith(b"GET /pkg.Svc/Call HTTP/1.1\r\n")
    assert b"transfer-encoding: chunked" in mirrored.lower()
    assert mirrored.endswith(
        b"7\r\n\x00\x00\x00\x00\x02hi\r\n8\r\n\x00\x00\x00\x00\x03abc\r\n0\r\n\r\n"
    )
    upstream, sent = fake_upstream()
    stream.attached(upstream)  # the primary gets the same bytes
    assert b"".join(sent.written) == mirrored
    assert not peer.of(h2.events.StreamReset)


async def test_reset_stream_drops_the_mirror() -> None:
    users: list[Any] = []
    copies: list[Any] = []
    peer = Peer(_mirrored_table(users, copies))
    peer.start()
    sid = peer.request("/upload", end=False, extra=[("content-length", "10")])
    peer.send()
    peer.h2.send_data(sid, b"12345")
    peer.send()
    (copy,) = copies
    peer.h2.reset_stream(sid)
    peer.send()
    assert copy.done  # given up: the rest of the body will never come
    pool = EndpointPool("127.0.0.2", 9)
    conn, transport = _connection(pool)
    copy.attached(conn)
    assert transport.written == [] and conn in pool.idle
