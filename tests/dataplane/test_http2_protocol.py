"""HTTP/2 client side fed raw bytes: frames built by an h2 client connection, a fake transport.

Covers how a connection becomes HTTP/2 (prior-knowledge preface, whole and one byte at a
time; h2c Upgrade), local answers (404, gRPC trailers-only), REFUSED_STREAM past the
stream limit, graceful GOAWAY, and flow control: received DATA is acknowledged only once
written to an upstream that is not paused.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from hyperframe.frame import GoAwayFrame

from turnout.dataplane import h2base
from turnout.dataplane.h2stream import H2Stream, grpc_status
from turnout.dataplane.http1 import PREFACE, ClientConnection, SocketState
from turnout.dataplane.http2 import H2ClientConnection
from turnout.dataplane.router import (
    HostMap,
    ListenerTable,
    Rule,
    SocketTable,
    Target,
    VirtualHostTable,
)
from turnout.dataplane.upstream import EndpointPool, UpstreamCluster, UpstreamConnection


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.protocol: Any = None
        self.closed = False
        self.aborted = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def take(self) -> bytes:
        data = b"".join(self.written)
        self.written.clear()
        return data

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted


def _table(status: int = 404) -> SocketTable:
    """A socket whose one rule answers ``status`` for /direct; anything else is a 404."""
    table = SocketTable()
    vhosts: HostMap[VirtualHostTable] = HostMap()
    rule = Rule("direct", lambda path: path == b"/direct", (), [(1, Target(status=status))])
    vhosts.add(None, VirtualHostTable((rule,)))
    table.listeners.add(None, ListenerTable("default/gw/http", vhosts))
    return table


class Peer:
    """An h2 client connection talking to a ClientConnection through a FakeTransport."""

    def __init__(self, table: SocketTable | None = None) -> None:
        self.state = SocketState(table or _table())
        self.transport = FakeTransport()
        self.server: Any = ClientConnection(self.state)
        self.server.connection_made(self.transport)
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.events: list[h2.events.Event] = []

    def start(self, *, byte_at_a_time: bool = False) -> None:
        self.h2.initiate_connection()
        self.send(byte_at_a_time=byte_at_a_time)

    def send(self, *, byte_at_a_time: bool = False) -> None:
        data = self.h2.data_to_send()
        protocol = self.transport.protocol or self.server
        if byte_at_a_time:
            for i in range(len(data)):
                protocol = self.transport.protocol or self.server
                protocol.data_received(data[i : i + 1])
        else:
            protocol.data_received(data)
        self.receive()

    def receive(self) -> None:
        data = self.transport.take()
        if data:
            self.events += self.h2.receive_data(data)
            leftover = self.h2.data_to_send()
            if leftover and self.transport.protocol is not None:
                self.transport.protocol.data_received(leftover)
                self.receive()

    def request(
        self, path: str, *, end: bool = True, extra: list[tuple[str, str]] | None = None
    ) -> int:
        stream_id: int = self.h2.get_next_available_stream_id()
        headers = [(":method", "GET"), (":scheme", "http"), (":authority", "a.test")]
        headers += [(":path", path), *(extra or [])]
        self.h2.send_headers(stream_id, headers, end_stream=end)
        return stream_id

    def of(self, kind: type[Any], stream_id: int | None = None) -> list[Any]:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (stream_id is None or e.stream_id == stream_id)
        ]

    def response(self, stream_id: int) -> dict[bytes, bytes]:
        (received,) = self.of(h2.events.ResponseReceived, stream_id)
        return dict(received.headers)


@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_prior_knowledge_preface_switches_to_http2(byte_at_a_time: bool) -> None:
    peer = Peer()
    peer.start(byte_at_a_time=byte_at_a_time)
    assert isinstance(peer.transport.protocol, H2ClientConnection)
    assert peer.server not in peer.state.connections  # handed over
    assert peer.transport.protocol in peer.state.connections
    stream_id = peer.request("/direct")
    peer.send(byte_at_a_time=byte_at_a_time)
    assert peer.response(stream_id)[b":status"] == b"404"
    assert peer.of(h2.events.StreamEnded, stream_id)
    settings = peer.of(h2.events.RemoteSettingsChanged)[0].changed_settings
    limit = settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value
    assert limit == h2base.MAX_CONCURRENT_STREAMS


def test_http1_request_starting_like_the_preface_stays_http1() -> None:
    peer = Peer()
    for byte in b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n":
        peer.server.data_received(bytes([byte]))
    assert peer.transport.protocol is None
    assert peer.transport.take().startswith(b"HTTP/1.1 404 ")


def test_local_answers_and_direct_status() -> None:
    peer = Peer(_table(status=503))
    peer.start()
    found = peer.request("/direct")
    missing = peer.request("/missing")
    peer.send()
    assert peer.response(found)[b":status"] == b"503"
    assert peer.response(missing)[b":status"] == b"404"
    body = b"".join(e.data for e in peer.of(h2.events.DataReceived, missing))
    assert body == b"404 Not Found\n"  # as over HTTP/1.1
    assert b"connection" not in peer.response(missing)


@pytest.mark.parametrize(("status", "code"), [(404, 12), (500, 14), (503, 14), (504, 4)])
def test_grpc_local_answer_is_trailers_only(status: int, code: int) -> None:
    peer = Peer(_table(status=status))
    peer.start()
    path = "/direct" if status != 404 else "/pkg.Svc/Missing"
    stream_id = peer.request(path, extra=[("content-type", "application/grpc+proto")])
    peer.send()
    headers = peer.response(stream_id)
    assert headers[b":status"] == b"200"
    assert headers[b"content-type"] == b"application/grpc"
    assert headers[b"grpc-status"] == b"%d" % code
    assert grpc_status(status)[0] == code
    assert not peer.of(h2.events.DataReceived, stream_id)
    ended = peer.of(h2.events.StreamEnded, stream_id)
    assert ended  # HEADERS carried END_STREAM: a trailers-only response


def test_answer_before_the_request_ends_resets_with_no_error() -> None:
    peer = Peer()
    peer.start()
    stream_id = peer.request("/direct", end=False)  # a body would follow
    peer.send()
    assert peer.response(stream_id)[b":status"] == b"404"
    (reset,) = peer.of(h2.events.StreamReset, stream_id)  # RFC 9113 8.1: stop sending
    assert reset.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert not peer.transport.protocol.streams


def test_streams_over_the_limit_are_refused() -> None:
    peer = Peer()
    peer.start()
    server: H2ClientConnection = peer.transport.protocol
    for stream_id in range(101, 101 + 2 * h2base.MAX_CONCURRENT_STREAMS, 2):
        server.streams[stream_id] = H2Stream(server, stream_id)  # in flight, unfinished
    extra = peer.request("/direct")
    peer.send()
    (reset,) = peer.of(h2.events.StreamReset, extra)
    assert reset.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
    assert not peer.transport.closed  # a stream error, not a connection error
    del server.streams[101]
    again = peer.request("/direct")
    peer.send()
    assert peer.response(again)[b":status"] == b"404"


def test_shutdown_sends_goaway_and_lets_streams_finish() -> None:
    peer = Peer()
    peer.start()
    server: H2ClientConnection = peer.transport.protocol
    busy = H2Stream(server, 1)
    server.streams[1] = busy
    server.shutdown()
    data = peer.transport.take()
    assert not peer.transport.closed  # a stream is still in flight
    goaway = data[data.index(b"\x07\x00\x00\x00\x00\x00") - 3 :]
    frame, length = GoAwayFrame.parse_frame_header(memoryview(goaway[:9]))
    frame.parse_body(memoryview(goaway[9 : 9 + length]))
    assert frame.error_code == 0
    # A new stream after the GOAWAY is refused; the busy one finishing closes the connection.
    server.stream_finished(busy)
    assert peer.transport.closed


def test_h2c_upgrade_serves_the_request_as_stream_1() -> None:
    peer = Peer()
    settings = peer.h2.initiate_upgrade_connection().rstrip(b"=")  # padding may be left out
    peer.h2.data_to_send()
    request = (
        b"GET /direct HTTP/1.1\r\nhost: a.test\r\nconnection: Upgrade, HTTP2-Settings\r\n"
        b"upgrade: h2c\r\nhttp2-settings: " + settings + b"\r\n\r\n"
    )
    peer.server.data_received(request + PREFACE)
    data = peer.transport.take()
    assert data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    head, _, frames = data.partition(b"\r\n\r\n")
    assert b"upgrade: h2c" in head.lower()
    peer.events += peer.h2.receive_data(frames)
    peer.send()
    assert peer.response(1)[b":status"] == b"404"
    assert isinstance(peer.transport.protocol, H2ClientConnection)


def fake_upstream() -> tuple[UpstreamConnection, FakeTransport]:
    """A real upstream connection (what an H2Stream writes request bytes to) on a transport
    that records them."""
    conn = UpstreamConnection(EndpointPool("127.0.0.1", 9))
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def _forwarding_table(users: list[Any]) -> SocketTable:
    """Every request goes to one endpoint whose connects never finish (users recorded)."""
    pool = EndpointPool("127.0.0.1", 9, connector=lambda _pool, user: users.append(user))
    target = Target(cluster=UpstreamCluster("c", (pool,)))
    table = SocketTable()
    vhosts: HostMap[VirtualHostTable] = HostMap()
    vhosts.add(None, VirtualHostTable((Rule("all", lambda _path: True, (), [(1, target)]),)))
    table.listeners.add(None, ListenerTable("default/gw/http", vhosts))
    return table


def _window_updates(peer: Peer, stream_id: int) -> int:
    return sum(e.delta for e in peer.of(h2.events.WindowUpdated, stream_id))


def test_request_data_is_acknowledged_only_once_written_to_an_unpaused_upstream() -> None:
    users: list[Any] = []
    peer = Peer(_forwarding_table(users))
    peer.start()
    sid = peer.request("/upload", end=False, extra=[("content-length", "400000")])
    peer.send()
    (stream,) = users
    chunk = b"x" * 16384
    for _ in range(8):
        peer.h2.send_data(sid, chunk)
    peer.send()
    assert _window_updates(peer, sid) == 0  # no upstream connection yet: held back
    upstream, sent = fake_upstream()
    stream.attached(upstream)
    peer.receive()
    written = b"".join(sent.written)
    assert written.startswith(b"GET /upload HTTP/1.1\r\nhost: a.test\r\n")
    assert written.endswith(chunk * 8)
    acknowledged = _window_updates(peer, sid)
    assert acknowledged > 0  # h2 batches WINDOW_UPDATEs; some were sent now
    stream.upstream_paused(True)  # the upstream's write buffer is full
    for _ in range(8):
        peer.h2.send_data(sid, chunk)
    peer.send()
    assert len(b"".join(sent.written)) == len(written) + 8 * len(chunk)  # written through
    assert _window_updates(peer, sid) == acknowledged  # but not acknowledged
    stream.upstream_paused(False)
    peer.receive()
    assert _window_updates(peer, sid) > acknowledged
