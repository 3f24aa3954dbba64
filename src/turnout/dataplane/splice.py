"""splice: byte streams between a client and a backend, for TCPRoute and TLSRoute.

Place in the pipeline: the L4 listeners (:mod:`turnout.dataplane.l4` for TCP,
:mod:`turnout.dataplane.passthrough` for TLS) accept a client, choose a backend with a
:class:`Balancer` and hand both ends to a :class:`Splice`, which owns the upstream
connection.

Theory of operation. A splice moves bytes both ways and keeps three promises:

* **Backpressure both ways.** When the upstream transport's write buffer passes its
  high-water mark (``pause_writing``), reading from the client stops until it drains,
  and the other way round; bytes received before the upstream connection exists are
  held up to ``PENDING_LIMIT``, then the client is paused too. Memory per connection
  stays bounded whatever the speeds of the two peers.
* **Half-close.** An EOF from one side becomes ``write_eof`` on the other, and the
  splice keeps the reverse direction open until that side ends too (protocols such as
  rsync or ``nc -q`` rely on it). The connection closes when both directions ended or
  either side is lost.
* **Rejection is a reset.** No usable backend (an invalid backendRef's share, no ready
  endpoint, connect refused or timed out): the client connection is reset, as
  TCPRouteRule.BackendRefs requires ("actively reject connection attempts").

The client end is anything with :class:`ClientSide`'s methods: a plain transport
wrapper for TCP, a TLS-terminating one for TLSRoute in mode Terminate.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
import socket
import struct
from collections.abc import Mapping
from typing import Protocol, cast

from turnout import ir
from turnout.dataplane.stats import STATS

PENDING_LIMIT = 256 * 1024  # client bytes held while the upstream connects
CONNECT_TIMEOUT = 10.0

Endpoint = tuple[str, int]


class Balancer:
    """Weighted choice among one L4 route's backends (weights are proportions).

    An invalid backendRef, or a cluster without ready endpoints, keeps its share of the
    weight: picks that land there return None and the caller rejects the connection
    (datagram), so that rejections "respect weight" (TCPRouteRule.BackendRefs). A
    weight of 0 is never picked.
    """

    __slots__ = ("_cumulative", "_endpoints", "_total", "name")

    def __init__(self, route: ir.L4Route, clusters: Mapping[str, ir.Cluster]) -> None:
        self.name = route.name
        self._cumulative: list[int] = []
        self._endpoints: list[tuple[Endpoint, ...]] = []
        total = 0
        for backend in route.backends:
            if backend.weight <= 0:
                continue
            cluster = clusters.get(backend.cluster) if backend.cluster is not None else None
            endpoints = tuple((e.address, e.port) for e in cluster.endpoints) if cluster else ()
            total += backend.weight
            self._cumulative.append(total)
            self._endpoints.append(endpoints)
        self._total = total

    def pick(self) -> Endpoint | None:
        if self._total == 0:
            return None
        index = bisect.bisect_right(self._cumulative, random.randrange(self._total))
        endpoints = self._endpoints[index]
        return random.choice(endpoints) if endpoints else None


def reset(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP RST (SO_LINGER 0), the way L4 routes reject a connection."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already gone: abort() below still closes it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    cast(asyncio.Transport, transport).abort()


class ClientSide(Protocol):
    """What a splice needs from the client end."""

    def write(self, data: bytes) -> None: ...
    def write_eof(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def reset(self) -> None: ...


class Splice:
    """One client connection joined to one upstream connection."""

    __slots__ = ("_client", "_client_eof", "_closed", "_pending", "_upstream", "_upstream_eof")

    def __init__(self, client: ClientSide) -> None:
        self._client = client
        self._upstream: asyncio.Transport | None = None
        self._pending = bytearray()
        self._client_eof = False
        self._upstream_eof = False
        self._closed = False

    def start(self, endpoint: Endpoint, initial: bytes = b"") -> None:
        """Connect to ``endpoint``; ``initial`` is sent first (a peeked ClientHello)."""
        self._pending += initial
        asyncio.get_running_loop().create_task(self._connect(endpoint))

    async def _connect(self, endpoint: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: _UpstreamProtocol(self), *endpoint),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError):
            self.fail()

    # --- client events -------------------------------------------------------------------

    def from_client(self, data: bytes) -> None:
        if self._upstream is not None:
            self._upstream.write(data)
            return
        self._pending += data
        if len(self._pending) > PENDING_LIMIT:
            self._client.pause_reading()

    def client_eof(self) -> None:
        self._client_eof = True
        if self._upstream is not None and self._upstream.can_write_eof():
            self._upstream.write_eof()
        self._maybe_done()

    def client_lost(self) -> None:
        self._closed = True
        if self._upstream is not None:
            self._upstream.close()  # sends what is buffered, then FIN

    def client_paused(self) -> None:
        """The client's write buffer is full: stop reading from the upstream."""
        if self._upstream is not None:
            self._upstream.pause_reading()

    def client_resumed(self) -> None:
        if self._upstream is not None and not self._upstream.is_closing():
            self._upstream.resume_reading()

    def fail(self) -> None:
        """No backend could take the connection: reset the client."""
        self._closed = True
        if self._upstream is not None:
            self._upstream.abort()
        self._client.reset()

    def close(self) -> None:
        """Graceful end (the data plane shuts down): FIN both ways."""
        self._closed = True
        if self._upstream is not None:
            self._upstream.close()
        self._client.close()

    # --- upstream events -----------------------------------------------------------------

    def upstream_made(self, transport: asyncio.Transport) -> None:
        if self._closed:
            transport.abort()
            return
        self._upstream = transport
        if self._pending:
            transport.write(bytes(self._pending))
            self._pending.clear()
            self._client.resume_reading()
        if self._client_eof and transport.can_write_eof():
            transport.write_eof()

    def from_upstream(self, data: bytes) -> None:
        self._client.write(data)

    def upstream_eof(self) -> None:
        self._upstream_eof = True
        self._client.write_eof()
        self._maybe_done()

    def upstream_lost(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        if exc is not None:
            self._client.reset()  # the backend reset: so does the gateway
        else:
            self._client.close()

    def upstream_paused(self) -> None:
        """The upstream's write buffer is full: stop reading from the client."""
        self._client.pause_reading()

    def upstream_resumed(self) -> None:
        self._client.resume_reading()

    def _maybe_done(self) -> None:
        if self._client_eof and self._upstream_eof:
            self._closed = True
            if self._upstream is not None:
                self._upstream.close()
            self._client.close()


class _UpstreamProtocol(asyncio.Protocol):
    __slots__ = ("_splice",)

    def __init__(self, splice: Splice) -> None:
        self._splice = splice

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._splice.upstream_made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self._splice.from_upstream(data)

    def eof_received(self) -> bool:
        self._splice.upstream_eof()
        return True  # keep the transport open: the client may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        self._splice.upstream_lost(exc)

    def pause_writing(self) -> None:
        self._splice.upstream_paused()

    def resume_writing(self) -> None:
        self._splice.upstream_resumed()


class StreamConnection(asyncio.Protocol):
    """Base of the L4 client protocols: the client end of a splice over a transport."""

    def __init__(self, connections: set[StreamConnection]) -> None:
        self._connections = connections
        self.transport: asyncio.Transport | None = None
        self.splice: Splice | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        STATS.l4_connections += 1
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        if self.splice is not None:
            self.splice.client_lost()

    def eof_received(self) -> bool:
        if self.splice is None:
            return False  # nothing chosen yet: close
        self.splice.client_eof()
        return True

    def pause_writing(self) -> None:
        if self.splice is not None:
            self.splice.client_paused()

    def resume_writing(self) -> None:
        if self.splice is not None:
            self.splice.client_resumed()

    # --- ClientSide ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def write_eof(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write_eof()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def reset(self) -> None:
        if self.transport is not None:
            reset(self.transport)

    def shutdown(self) -> None:
        """The data plane stops: end the connection gracefully."""
        if self.splice is not None:
            self.splice.close()
        else:
            self.close()
