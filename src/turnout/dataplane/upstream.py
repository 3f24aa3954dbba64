"""upstream: connections from the proxy to backend endpoints, pooled per endpoint.

Place in the pipeline: :mod:`turnout.dataplane.server` keeps one :class:`EndpointPool` per
(address, port) across configurations and wraps each ``ir.Cluster`` in an
:class:`UpstreamCluster` (round-robin over its endpoints, skipping those that
:mod:`turnout.dataplane.health` ejected after failed connections). :mod:`turnout.dataplane.http1`
asks a pool for a connection per proxied request and gets it back through
:meth:`UpstreamUser.attached` -- synchronously when an idle keep-alive connection is
available, after a connect otherwise (the only place a Task is created).

An :class:`UpstreamConnection` parses responses with httptools and forwards the events to
the one :class:`UpstreamUser` it is bound to; an idle connection has no user and sits in
its pool until reused, closed by the peer, or swept for idleness.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Final, cast

import httptools

from turnout.dataplane.health import EndpointHealth
from turnout.dataplane.limits import DEFAULT_LIMITS, Limits
from turnout.dataplane.messages import LowerNames
from turnout.dataplane.stats import STATS, StatusCounts
from turnout.dataplane.upstream_tls import UpstreamTLS

log = logging.getLogger(__name__)

# Flow control: pause the peer once this much is queued in a transport (see http1).
HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024
CONNECT_TIMEOUT: Final = 10.0


class UpstreamUser:
    """What an upstream connection reports to (a proxied exchange or a mirror).

    A base class rather than a Protocol: compiled by mypyc, a call through it is a
    vtable call, where a Protocol-typed receiver costs a method lookup by name on every
    call (five per proxied request).
    """

    def attached(self, conn: UpstreamConnection) -> None:
        raise NotImplementedError

    def connect_failed(self, exc: BaseException) -> None:
        raise NotImplementedError

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep: bool) -> bool:
        """Return True when the response has no body to wait for (HEAD)."""
        raise NotImplementedError

    def response_body(self, data: bytes) -> None:
        raise NotImplementedError

    def response_complete(self) -> None:
        raise NotImplementedError

    def upstream_flush(self) -> None:
        raise NotImplementedError

    def upstream_lost(self, conn: UpstreamConnection, exc: BaseException | None) -> None:
        raise NotImplementedError

    def upstream_paused(self, paused: bool) -> None:
        raise NotImplementedError


Connector = Callable[["EndpointPool", UpstreamUser], None]


class UpstreamProtocolError(Exception):
    """The upstream's response is malformed or over a limit: 502, connection closed."""


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to an endpoint."""

    def __init__(self, pool: EndpointPool) -> None:
        # per connection
        self.pool = pool
        self._max_fields = 2 * pool.limits.max_header_fields  # read per header line
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self._bind_parser()
        self._send: Callable[[bytes], object] | None = None  # transport.write, bound once
        self.requests = 0  # how many requests were sent; >0 means reused when bound again
        self.idle_since = 0.0
        self.reading_paused = False
        self.closed = False
        self._feeding = False
        self._release_pending = False  # released while parsing: to the pool after the read
        self._ended_by_trailer = False  # a trailer field made llhttp end the connection
        # per request
        self.user: UpstreamUser | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self.names = LowerNames()  # this backend's field names, lower-cased
        self._in_head = True
        self._head_bytes = 0
        self._heads = 0
        # A response passed on as received (see whole_message): the read being parsed,
        # whether no message ended in it yet, whether the current response began at its
        # first byte, the length of its head there once checked (0: not verbatim), and
        # its body bytes seen in this read.
        self._chunk = b""
        self._at_start = False
        self._began = False
        self.head_end = 0
        self._body_seen = 0

    def _bind_parser(self) -> None:
        # Bound once per parser: calling an attribute skips the method lookup on
        # httptools' type that ``self.parser.feed_data(...)`` costs on every response.
        parser = self.parser
        self._feed: Callable[[bytes], None] = parser.feed_data
        self._status_code: Callable[[], int] = parser.get_status_code
        self._keep_alive: Callable[[], bool] = parser.should_keep_alive

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        self.transport = transport
        self._send = transport.write

    def data_received(self, data: bytes) -> None:
        user = self.user
        if user is None:
            # An idle connection must not receive anything: it cannot be reused safely.
            self.close()
            return
        self._feeding = True
        self._chunk = data
        self._at_start = True
        self._began = False
        try:
            heads = self._heads if self._in_head else -1
            self._feed(data)
            if heads == self._heads:  # all of it was head bytes (llhttp does not bound them)
                self._head_bytes += len(data)
                if self._head_bytes > self.pool.limits.max_upstream_head_bytes:
                    raise UpstreamProtocolError("response head too large")
        except Exception as exc:  # httptools.HttpParserError, or a bug in a callback
            self._feeding = self._release_pending = False
            self._chunk = b""
            if isinstance(exc, httptools.HttpParserUpgrade) and self._switch(data[exc.args[0] :]):
                return
            current = self.user
            self.close()  # forgets the user: report to it here, not in connection_lost
            if current is not None:
                current.upstream_lost(self, exc)
            return
        self._feeding = False
        self._chunk = b""  # not kept while idle
        if self._release_pending:
            self._release_pending = False
            if not self.closed:
                self.pool.release(self)
        if self.user is not None:
            self.user.upstream_flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        if self.user is not None:
            # Closed or reset by the backend (or the network) under a request: every close
            # of ours (close(), release, a malformed response) forgets the user first.
            STATS.upstream_resets += 1
        if self.user is not None and self._heads == 0 and self.requests == 1:
            # A fresh connection closed or reset before any response: the endpoint failed
            # (a reused one may just have raced with the backend's keep-alive timeout).
            self.pool.failed(exc or ConnectionResetError("closed before a response"))
        self._lost(exc)

    def pause_writing(self) -> None:
        if self.user is not None:
            self.user.upstream_paused(True)

    def resume_writing(self) -> None:
        if self.user is not None:
            self.user.upstream_paused(False)

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.user is None:
            # Bytes after the response, in the same read as its end: nobody asked for
            # them. Reused, the connection would hand them to the next request as its
            # response (response queue poisoning), so it is closed instead.
            raise UpstreamProtocolError("response data nobody asked for")
        self._began = self._at_start
        self.head_end = 0
        self._body_seen = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        headers.append((name, value))
        if len(headers) > self._max_fields:
            raise UpstreamProtocolError("too many response header fields")

    def on_headers_complete(self) -> None:
        headers = self._headers
        self._headers = []
        self._in_head = False
        self._head_bytes = 0
        self._heads += 1
        if self.pool.health.failures:
            self.pool.health.succeeded()
        user = self.user
        if user is None:
            return
        status = self._status_code()
        if not 100 <= status <= 599:
            # RFC 9110 15: valid codes are 100-599; llhttp reads "020" as 20, which the
            # client would get as a status line no parser accepts (found by fuzz/).
            raise UpstreamProtocolError(f"invalid status code {status}")
        if self._began:
            self.head_end = _verbatim_head_end(self._chunk)
        if user.response_head(status, headers, self._keep_alive()):
            # A response to HEAD has no body, but llhttp cannot be told so through
            # httptools: end the message here and parse the next one with a new parser.
            self.parser = httptools.HttpResponseParser(self)
            self._bind_parser()
            self.user = None  # the old parser may still call back; nobody listens
            self._in_head = True
            user.response_complete()

    def on_body(self, data: bytes) -> None:
        if self._began:
            self._body_seen += len(data)
        if self.user is not None:
            self.user.response_body(data)

    def on_message_complete(self) -> None:
        self._at_start = False
        self._in_head = True  # also after a 1xx: the final head follows
        if self._headers:
            # Chunked trailer fields (llhttp reports them through on_header): they must not
            # become header fields of the next response on this connection. Dropped.
            self._headers = []
            if not self._keep_alive():
                # One of them (Transfer-Encoding, Connection: close) made llhttp read the
                # connection as ending here: it would refuse the next response on it, a
                # 502 for the next request (found by fuzz/upstream_response.py).
                self._ended_by_trailer = True
        if self.user is not None:
            self.user.response_complete()

    # --- used by exchanges ---------------------------------------------------------------

    def head_as_received(self) -> bytes:
        """The current response's head exactly as received; only when ``head_end`` > 0."""
        return self._chunk[: self.head_end]

    def whole_message(self) -> bytes | None:
        """The read being parsed, when it is exactly the response just completed: its
        checked head (``head_end``) and its whole body, nothing before nor after. A proxy
        that changes nothing in that response can write these bytes as they are."""
        end = self.head_end
        if end and self._began and end + self._body_seen == len(self._chunk):
            return self._chunk
        return None

    def bind(self, user: UpstreamUser) -> None:
        self.user = user
        user.attached(self)
        self.requests += 1

    def write(self, data: bytes) -> None:
        send = self._send
        if send is not None:
            send(data)

    def pause_reading(self, paused: bool) -> None:
        transport = self.transport
        if transport is None or paused == self.reading_paused or self.closed:
            return
        self.reading_paused = paused
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def release(self, keep_alive: bool) -> None:
        """The exchange is over: back to the pool, or closed when it cannot be reused."""
        self.user = None
        if keep_alive and not self.closed and not self._ended_by_trailer:
            if self.reading_paused:
                self.pause_reading(False)
            if self._feeding:
                # Not reusable until the rest of this read is parsed: on_message_begin
                # must see no user if the backend sent more than the response.
                self._release_pending = True
            else:
                self.pool.release(self)
        else:
            self.close()

    def close(self) -> None:
        self.user = None
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()

    def _switch(self, rest: bytes) -> bool:
        """A ``101 Switching Protocols`` was parsed: offer the transport to the user (an
        exchange that asked for the upgrade takes it for a tunnel); ``rest`` is what
        followed the 101 head. Once taken, this connection object is done with."""
        takeover = getattr(self.user, "upstream_upgraded", None)
        transport = self.transport
        if takeover is None or transport is None or not takeover(transport, rest):
            return False
        self.user = None
        self.transport = None
        self._send = None
        self.closed = True
        self.pool.discard(self)
        return True

    def _lost(self, exc: BaseException | None) -> None:
        user = self.user
        self.user = None
        if user is not None:
            user.upstream_lost(self, exc)


def _verbatim_head_end(chunk: bytes) -> int:
    """The length of the response head at the start of ``chunk`` if it can be passed on as
    received, else 0.

    Called only when the response began at the first byte of ``chunk`` and its head was
    parsed in it: llhttp has validated those bytes (strict mode: CRLF line ends, no
    obs-fold, one space after the version). llhttp also skips empty lines before a
    status line; this checks that the head starts with an HTTP/1.1 status line, the
    version the client gets.
    """
    if not chunk.startswith(b"HTTP/1.1 "):
        return 0
    end = chunk.find(b"\r\n\r\n")
    return end + 4 if end > 0 else 0


def _connect_with_loop(pool: EndpointPool, user: UpstreamUser) -> None:
    """Default connector: a Task that opens a TCP connection, then binds it."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(_connect(pool, user))
    pool.pending.add(task)
    task.add_done_callback(pool.pending.discard)


async def _connect(pool: EndpointPool, user: UpstreamUser) -> None:
    loop = asyncio.get_running_loop()
    tls = pool.tls
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            if tls is None:
                _, conn = await loop.create_connection(
                    lambda: UpstreamConnection(pool), pool.host, pool.port
                )
            else:
                _, conn = await loop.create_connection(
                    lambda: UpstreamConnection(pool),
                    pool.host,
                    pool.port,
                    ssl=tls.context,
                    server_hostname=tls.sni,
                )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        STATS.upstream_connect_failures += 1
        pool.failed(exc)
        user.connect_failed(exc)
        return
    except asyncio.CancelledError:
        user.connect_failed(ConnectionAbortedError("proxy shutting down"))
        raise
    if tls is not None and conn.transport is not None and not conn.closed:
        problem = tls.check(conn.transport.get_extra_info("peercert"))
        if problem is not None:
            STATS.upstream_connect_failures += 1
            conn.close()
            user.connect_failed(ssl.SSLCertVerificationError(problem))
            return
    if conn.closed:
        STATS.upstream_connect_failures += 1
        reset = ConnectionResetError("closed right after connect")
        pool.failed(reset)
        user.connect_failed(reset)
    else:
        conn.bind(user)


class CoarseClock:
    """``time.monotonic()`` as of the last idle sweep: when pooled connections went idle.

    Reading the clock on every release (a module attribute, a call, a float) cost 2% of
    the request path; idle connections are closed after tens of seconds, so the time of
    the last sweep (every few seconds, see ``server.DataPlane._sweep_idle``, which
    advances it) is precise enough: a connection may be closed one sweep early.
    """

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = time.monotonic()


IDLE_CLOCK: Final = CoarseClock()


class EndpointPool:
    """Idle keep-alive connections to one endpoint (LIFO: the warmest one first)."""

    def __init__(
        self,
        host: str,
        port: int,
        connector: Connector = _connect_with_loop,
        limits: Limits = DEFAULT_LIMITS,
        tls: UpstreamTLS | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls  # originate TLS (BackendTLSPolicy); part of the pool's identity
        self.limits = limits
        self.idle: list[UpstreamConnection] = []
        self.pending: set[asyncio.Task[None]] = set()
        self.retired = False  # no configuration uses this endpoint any more
        self.health = EndpointHealth()
        self._connector = connector

    def acquire(self, user: UpstreamUser, *, fresh: bool = False) -> None:
        """Bind ``user`` to a connection, now if one is idle, else once connected."""
        idle = self.idle
        while idle and not fresh:
            conn = idle.pop()
            if not conn.closed:
                conn.bind(user)
                return
        self._connector(self, user)

    def failed(self, exc: BaseException) -> None:
        """A connect or a fresh connection failed: eject the endpoint for a while."""
        duration = self.health.failed(time.monotonic())
        if duration is not None:
            log.warning(
                "endpoint %s:%d ejected for %.0f s (failure %d in a row): %s",
                self.host,
                self.port,
                duration,
                self.health.failures,
                exc or "connection lost",
            )

    def release(self, conn: UpstreamConnection) -> None:
        if self.retired:
            conn.close()
            return
        conn.idle_since = IDLE_CLOCK.now
        self.idle.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    def close_idle(self, older_than: float | None = None) -> None:
        """Close idle connections (all, or those idle since before ``older_than``)."""
        keep = []
        for conn in self.idle:
            if older_than is None or conn.idle_since < older_than:
                conn.close()
            else:
                keep.append(conn)
        self.idle = keep

    def retire(self) -> None:
        """No configuration uses the endpoint any more; connections in use close when done."""
        self.retired = True
        self.close_idle()

    def close(self) -> None:
        self.retired = True
        self.close_idle()
        for task in list(self.pending):
            task.cancel()


class UpstreamCluster:
    """The endpoints of one cluster, chosen round-robin among those not ejected."""

    __slots__ = ("_next", "name", "pools", "stats")

    def __init__(
        self, name: str, pools: tuple[EndpointPool, ...], stats: StatusCounts | None = None
    ) -> None:
        self.name = name
        self.pools = pools
        self._next = 0
        # Responses to requests routed here (turnout.dataplane.stats); shared by every
        # cluster object of this name that the data plane builds, so counts carry over.
        self.stats = StatusCounts() if stats is None else stats

    def pick(self, avoid: EndpointPool | None = None) -> EndpointPool | None:
        """The next endpoint; with ``avoid``, another one than it, or None if none is."""
        pools = self.pools
        if not pools:
            return None
        i = self._next
        if i >= len(pools):
            i = 0
        self._next = i + 1
        pool = pools[i]
        if pool.health.ejected_until == 0.0 and pool is not avoid:
            return pool  # the common case: no clock read, no loop
        return self._pick_healthy(i, avoid)

    def _pick_healthy(self, start: int, avoid: EndpointPool | None) -> EndpointPool | None:
        pools = self.pools
        now = time.monotonic()
        n = len(pools)
        fallback: EndpointPool | None = None
        for k in range(n):
            j = (start + k) % n
            pool = pools[j]
            if pool is avoid:
                continue
            if pool.health.available(now):
                self._next = j + 1
                return pool
            if fallback is None or pool.health.ejected_until < fallback.health.ejected_until:
                fallback = pool
        return fallback  # every other endpoint is ejected: try the one back soonest
