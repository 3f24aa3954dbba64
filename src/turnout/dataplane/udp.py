"""udp: UDP listeners for UDPRoute -- a session per client address, each with its own socket.

Place in the pipeline: :mod:`turnout.dataplane.l4` binds one datagram socket per UDP
listener and serves it with :class:`UDPListenerProtocol`, reading a
:class:`~turnout.dataplane.splice.Balancer` compiled from the listener's ``l4_route``.

Theory of operation. UDP has no connections, so the gateway makes sessions: the first
datagram from a client address picks a backend endpoint (weighted; an invalid
backend's share is dropped, as UDPRouteRule.BackendRefs says) and opens a connected
upstream socket for that client alone. Later datagrams from the same address go
through it, and every datagram the backend sends back on it is returned to that client
from the listener's socket. So a backend sees one stable peer per client, and replies
reach the right client without parsing anything.

A session ends after ``idle_timeout`` seconds without a datagram either way (checked
by a sweep every quarter of it); the next datagram from that address starts a new one,
possibly on another backend. Sessions keep their backend across configuration changes,
like established TCP connections. Datagrams that arrive while the upstream socket is
being opened are queued (at most ``_QUEUE_LIMIT``; beyond that they are dropped, which
UDP allows). ``idle_timeout`` is ``Limits.udp_idle_timeout`` (``turnout run
--udp-idle-timeout``, 60 s by default).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from turnout.dataplane.splice import Balancer, Endpoint
from turnout.dataplane.stats import STATS

MAX_SESSIONS = 10_000  # per listener; datagrams from further clients are dropped
_QUEUE_LIMIT = 64

Address = tuple[Any, ...]  # (host, port) or the IPv6 4-tuple


class UDPSocketState:
    """What one UDP listener socket shares; ``table`` is swapped on apply."""

    __slots__ = ("table",)

    def __init__(self, table: Balancer | None) -> None:
        self.table = table


class _Session(asyncio.DatagramProtocol):
    """One client address and its upstream socket."""

    __slots__ = ("_listener", "client", "last_used", "queue", "transport")

    def __init__(self, listener: UDPListenerProtocol, client: Address) -> None:
        self._listener = listener
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.queue: list[bytes] = []
        self.last_used = asyncio.get_running_loop().time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        for data in self.queue:
            self.transport.sendto(data)
        self.queue.clear()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.last_used = asyncio.get_running_loop().time()
        self._listener.reply(data, self.client)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable and the like: UDP drops, the session idles out

    def connection_lost(self, exc: Exception | None) -> None:
        self._listener.forget(self)

    def send(self, data: bytes) -> None:
        self.last_used = asyncio.get_running_loop().time()
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.queue) < _QUEUE_LIMIT:
            self.queue.append(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        else:
            self._listener.forget(self)


class UDPListenerProtocol(asyncio.DatagramProtocol):
    """The listener socket: datagrams in from clients, replies out to them."""

    def __init__(self, state: UDPSocketState, idle_timeout: float) -> None:
        self._state = state
        self._idle_timeout = idle_timeout
        self._transport: asyncio.DatagramTransport | None = None
        self._sessions: dict[Address, _Session] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def connection_lost(self, exc: Exception | None) -> None:
        self.close_sessions()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        session = self._sessions.get(addr)
        if session is None:
            session = self._open(addr)
            if session is None:
                return  # no backend for this share: dropped
        session.send(data)

    def error_received(self, exc: Exception) -> None:
        pass

    def _open(self, client: Address) -> _Session | None:
        table = self._state.table
        endpoint = table.pick() if table is not None else None
        if endpoint is None or len(self._sessions) >= MAX_SESSIONS:
            return None
        session = self._sessions[client] = _Session(self, client)
        STATS.udp_sessions += 1
        asyncio.get_running_loop().create_task(self._connect(session, endpoint))
        return session

    async def _connect(self, session: _Session, endpoint: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: session, remote_addr=endpoint)
        except OSError:
            session.close()

    def reply(self, data: bytes, client: Address) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, client)

    def forget(self, session: _Session) -> None:
        if self._sessions.get(session.client) is session:
            del self._sessions[session.client]

    def close_sessions(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for session in list(self._sessions.values()):
            session.close()
        self._sessions.clear()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(max(self._idle_timeout / 4, 0.05))
                cutoff = loop.time() - self._idle_timeout
                for session in [s for s in self._sessions.values() if s.last_used < cutoff]:
                    self.forget(session)
                    session.close()
