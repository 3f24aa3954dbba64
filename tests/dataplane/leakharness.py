"""In-memory clients and backends for the data plane's leak tests (test_leaks*.py).

The proxy's protocol objects are driven through their asyncio callbacks, as in
bench/request_path_micro.py, with transports that keep only what was written since the
test last looked: a leak test must not retain anything itself. A transport closed or
aborted by the proxy reports ``connection_lost`` when the test calls :meth:`Wire.settle`,
as an event loop would on its next iteration.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

import hpack
import uvloop
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from turnout import ir
from turnout.dataplane.http1 import PREFACE, ClientConnection, SocketState
from turnout.dataplane.router import compile_routes
from turnout.dataplane.upstream import (
    EndpointPool,
    UpstreamCluster,
    UpstreamConnection,
    UpstreamUser,
)

from .helpers import config, listener

P = ParamSpec("P")


class Wire:
    """The transports of one test: closes are delivered as ``connection_lost`` on settle."""

    def __init__(self) -> None:
        self.closing: list[MemoryTransport] = []

    def settle(self) -> None:
        closing, self.closing = self.closing, []
        for transport in closing:
            protocol = transport.protocol
            transport.protocol = None
            if protocol is not None:
                protocol.connection_lost(transport.lost_with)


class MemoryTransport(asyncio.Transport):
    """Keeps the bytes written since the last ``take``; a close is reported on settle."""

    def __init__(self, wire: Wire, protocol: asyncio.BaseProtocol | None = None) -> None:
        super().__init__()
        self.wire = wire
        self.protocol = protocol
        self.written: list[bytes] = []
        self.closed = False
        self.lost_with: Exception | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.written.append(bytes(data))

    def take(self) -> bytes:
        data = b"".join(self.written)
        self.written.clear()
        return data

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol  # http1 hands an HTTP/2 connection over

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.wire.closing.append(self)

    def abort(self) -> None:
        self.close()

    def lose(self, exc: Exception | None) -> None:
        """The peer closed (``exc`` None) or reset the connection."""
        self.lost_with = exc
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("10.1.2.3", 5555) if name == "peername" else default


class Backends:
    """A connector for endpoint pools: each connect succeeds at once on a memory transport
    (or is refused, while ``refuse`` is set). :meth:`requests` lists the upstream
    connections that were sent bytes since the last call, oldest first."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.refuse = False
        self.connects = 0
        self._written: list[tuple[UpstreamConnection, MemoryTransport]] = []

    def __call__(self, pool: EndpointPool, user: UpstreamUser) -> None:
        self.connects += 1
        if self.refuse:
            refused = ConnectionRefusedError("connection refused")
            pool.failed(refused)  # as upstream._connect does
            user.connect_failed(refused)
            return
        conn = UpstreamConnection(pool)
        conn.connection_made(_RecordingTransport(self, conn))
        conn.bind(user)

    def requests(self) -> list[tuple[UpstreamConnection, bytes]]:
        written, self._written = self._written, []
        return [(conn, transport.take()) for conn, transport in written if transport.written]


class _RecordingTransport(MemoryTransport):
    def __init__(self, backends: Backends, conn: UpstreamConnection) -> None:
        super().__init__(backends.wire, conn)
        self.backends = backends

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.written:
            self.backends._written.append((self.protocol, self))  # type: ignore[arg-type]
        super().write(data)


class Proxy:
    """One listening socket's state, with routes compiled from ``vhosts`` and clusters
    of endpoint pools served by :class:`Backends` (endpoints named by the cluster)."""

    def __init__(self, vhosts: tuple[ir.VirtualHost, ...], clusters: dict[str, int]) -> None:
        self.wire = Wire()
        self.backends = Backends(self.wire)
        self.clusters = {
            name: UpstreamCluster(
                name,
                tuple(
                    EndpointPool(f"10.0.{n}.{i + 1}", 80, connector=self.backends)
                    for i in range(count)
                ),
            )
            for n, (name, count) in enumerate(clusters.items())
        }
        compiled = compile_routes(config((listener(8080, vhosts, spec_port=8080),)), self.clusters)
        (socket_table,) = compiled.sockets.values()
        self.state = SocketState(socket_table)

    def connect(self) -> tuple[ClientConnection, MemoryTransport]:
        client = ClientConnection(self.state)
        transport = MemoryTransport(self.wire, client)
        client.connection_made(transport)
        return client, transport

    def answer(self, respond: Callable[[UpstreamConnection, bytes], None]) -> int:
        """Let ``respond`` answer every request sent upstream until none is left."""
        answered = 0
        while True:
            pending = self.backends.requests()
            if not pending:
                self.wire.settle()
                pending = self.backends.requests()
                if not pending:
                    return answered
            for conn, data in pending:
                respond(conn, data)
                answered += 1


def on_uvloop(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test on uvloop only (the production loop), as a plain test.

    The protocol objects are driven synchronously; the loop is there for what registers
    with it (the connection watchdog, policy and mirror timers). Leak measurement is slow
    enough that running each test on both loops, as tests/dataplane/conftest.py does for
    async tests, would double the suite's time for no more coverage.
    """

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        uvloop.run(test(*args, **kwargs))

    return run


class H2Response:
    """What one stream received: status, body size, end of stream, a reset's code."""

    __slots__ = ("body", "ended", "fields", "reset", "status")

    def __init__(self) -> None:
        self.status = b""
        self.fields: list[tuple[bytes, bytes]] = []
        self.body = 0
        self.ended = False
        self.reset: int | None = None


class H2Peer:
    """An HTTP/2 client written frame by frame (hyperframe, hpack) on a proxy connection.

    Unlike an ``h2`` client connection, it keeps nothing per stream (h2 remembers up to
    65,536 closed streams), so whatever grows while it talks is the proxy's. With
    ``decode=False`` it does not decode response heads: its HPACK table would grow with
    the proxy's when it announces a large ``HEADER_TABLE_SIZE``.
    """

    def __init__(
        self, proxy: Proxy, settings: dict[int, int] | None = None, *, decode: bool = True
    ):
        self.client, self.transport = proxy.connect()
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder() if decode else None
        self.next_stream = 1
        self.goaway = False
        self._settings = settings or {}

    def start(self) -> None:
        self.send(PREFACE + SettingsFrame(0, settings=self._settings).serialize())
        self.receive()

    def send(self, data: bytes) -> None:
        self.transport.get_protocol().data_received(data)  # type: ignore[attr-defined]

    def request(
        self, fields: list[tuple[bytes, bytes]], body: bytes | None = None, *, end: bool = True
    ) -> int:
        """Open a stream; END_STREAM after ``body`` (or the head) when ``end``."""
        stream_id = self.next_stream
        self.next_stream += 2
        flags = {"END_HEADERS"} if body is not None or not end else {"END_HEADERS", "END_STREAM"}
        frames = [HeadersFrame(stream_id, self.encoder.encode(fields), flags=flags).serialize()]
        if body is not None:
            data_flags = {"END_STREAM"} if end else set()
            frames.append(DataFrame(stream_id, body, flags=data_flags).serialize())
        self.send(b"".join(frames))
        return stream_id

    def reset(self, stream_id: int, code: int = 8) -> None:  # 8: CANCEL
        self.send(RstStreamFrame(stream_id, error_code=code).serialize())

    def receive(self) -> dict[int, H2Response]:
        """Parse what the proxy wrote; acknowledge SETTINGS and consumed DATA."""
        data = memoryview(self.transport.take())
        streams: dict[int, H2Response] = {}
        replies: list[bytes] = []
        while data:
            frame, length = Frame.parse_frame_header(data[:9])
            frame.parse_body(data[9 : 9 + length])
            data = data[9 + length :]
            if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                replies.append(SettingsFrame(0, flags={"ACK"}).serialize())
            elif isinstance(frame, GoAwayFrame):
                self.goaway = True
            if not frame.stream_id:
                continue
            response = streams.setdefault(frame.stream_id, H2Response())
            if isinstance(frame, HeadersFrame) and self.decoder is not None:
                for name, value in self.decoder.decode(frame.data, raw=True):
                    if name == b":status":
                        response.status = bytes(value)
                    else:
                        response.fields.append((bytes(name), bytes(value)))
            elif isinstance(frame, DataFrame):
                response.body += len(frame.data)
                if frame.flow_controlled_length:
                    increment = frame.flow_controlled_length
                    replies.append(WindowUpdateFrame(0, window_increment=increment).serialize())
            elif isinstance(frame, RstStreamFrame):
                response.reset = frame.error_code
            if "END_STREAM" in frame.flags:
                response.ended = True
        if replies and not self.transport.closed:
            self.send(b"".join(replies))
        return streams
