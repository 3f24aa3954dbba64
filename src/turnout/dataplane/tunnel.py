"""tunnel: two connections spliced into one byte stream after an HTTP/1.1 upgrade.

Place in the pipeline: :mod:`turnout.dataplane.http1` forwards a request carrying
``Connection: upgrade`` + ``Upgrade`` (a WebSocket handshake) like any other; when the
backend answers ``101 Switching Protocols`` and the 101 has been relayed, the client's
and the backend's transports are handed to a :class:`Tunnel`. From then on neither side
speaks HTTP: every byte read from one is written to the other, unparsed (WebSocket
frames included), until either side closes.

Theory of operation
-------------------
* Each transport gets a :class:`TunnelEnd` as its protocol (``transport.set_protocol``),
  so the HTTP objects are out of the byte path entirely.
* Backpressure both ways: when one end's write buffer passes the high-water mark
  (``pause_writing``), reading from the other end pauses; ``resume_writing`` resumes it.
* Close: a FIN from one side is passed on as a FIN (``write_eof``) where the transport
  can half-close, so the other direction may still finish; after both FINs, or when a
  transport cannot half-close (TLS), both are closed. A connection lost with an error
  aborts the other side (a reset is passed on as a reset); a clean loss closes it after
  its pending writes.
* A tunnel is not an HTTP request: no idle keep-alive timer and no route timeout
  applies to it, and a configuration reload (a routing-table swap) does not touch it.
  :meth:`Tunnel.close` (graceful shutdown) and :meth:`Tunnel.abort` end it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class TunnelEnd(asyncio.Protocol):
    """One side of a tunnel: the protocol of one transport."""

    __slots__ = ("eof", "lost", "peer", "transport", "tunnel")

    def __init__(self, tunnel: Tunnel, transport: asyncio.Transport) -> None:
        self.tunnel = tunnel
        self.transport = transport
        self.peer: TunnelEnd = self
        self.eof = False  # this side sent FIN
        self.lost = False

    def data_received(self, data: bytes) -> None:
        peer = self.peer.transport
        if not peer.is_closing():
            peer.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer.eof or peer.lost or not peer.transport.can_write_eof():
            self.tunnel.close()
            return False
        peer.transport.write_eof()
        # Keep this transport open for the other direction; SSL transports cannot.
        return self.transport.get_extra_info("ssl_object") is None

    def pause_writing(self) -> None:
        peer = self.peer.transport
        if not peer.is_closing():
            peer.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer.transport
        if not peer.is_closing():
            peer.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.tunnel.end_lost(self, exc)


class Tunnel:
    """A client transport and an upstream transport exchanging raw bytes."""

    __slots__ = ("_on_closed", "client", "upstream")

    def __init__(
        self,
        client: asyncio.Transport,
        upstream: asyncio.Transport,
        on_closed: Callable[[], None],
    ) -> None:
        self.client = TunnelEnd(self, client)
        self.upstream = TunnelEnd(self, upstream)
        self.client.peer = self.upstream
        self.upstream.peer = self.client
        self._on_closed = on_closed

    def start(
        self, *, to_upstream: bytes, to_client: bytes, high_water: int, client_write_paused: bool
    ) -> None:
        """Take both transports over; ``to_*`` are bytes that arrived with the handshake."""
        client, upstream = self.client.transport, self.upstream.transport
        client.set_protocol(self.client)
        upstream.set_protocol(self.upstream)
        if to_client:
            client.write(to_client)
        if to_upstream:
            upstream.write(to_upstream)
        # Reading resumes on each side unless the other side's writes are backed up;
        # pause_writing/resume_writing keep it so from here on.
        if not (client_write_paused or client.get_write_buffer_size() > high_water):
            upstream.resume_reading()
        else:
            upstream.pause_reading()
        if upstream.get_write_buffer_size() <= high_water:
            client.resume_reading()
        else:
            client.pause_reading()

    def end_lost(self, end: TunnelEnd, exc: Exception | None) -> None:
        peer = end.peer
        if peer.lost:
            self._on_closed()
        elif exc is not None:
            peer.transport.abort()
        else:
            peer.transport.close()

    def close(self) -> None:
        """Close both sides once their pending writes are sent."""
        for end in (self.client, self.upstream):
            if not end.lost:
                end.transport.close()

    def abort(self) -> None:
        for end in (self.client, self.upstream):
            if not end.lost:
                end.transport.abort()
