"""http1: the client side of the HTTP/1.1 proxy -- one protocol object per client connection.

Place in the pipeline: :mod:`turnout.dataplane.server` accepts connections and creates a
:class:`ClientConnection` per socket with the :class:`SocketState` of its listening socket;
requests are routed by :func:`turnout.dataplane.dispatch.route_request` (shared with
HTTP/2) with :mod:`turnout.dataplane.router` tables and forwarded over
:mod:`turnout.dataplane.upstream` connections. Byte-level heads come from
:mod:`turnout.dataplane.messages`.

Theory of operation
-------------------
Everything runs in asyncio Protocol callbacks; no Task or coroutine exists per request
(only upstream connects create Tasks). Mirrored copies of a request (head and body) are
:class:`turnout.dataplane.mirror.MirrorExchange` objects fed alongside the upstream.

* **Parsing.** httptools parses the client byte stream. ``on_url``/``on_header`` collect the
  head; ``on_headers_complete`` routes it at once -- capturing the routing table current at
  that moment, so a configuration swap never affects a request already parsed -- and
  creates an :class:`~turnout.dataplane.exchange.Exchange` (one per request), appended
  to ``ClientConnection.exchanges``.
* **Ordering.** Exchanges form a FIFO queue; only the first one talks to an upstream and
  writes to the client. Pipelined requests wait (their bodies buffered, bounded by pausing
  the client) and start when the one before them finishes; responses are thus in order.
* **An exchange** is finished when its request has been read completely *and* its response
  written completely. Then the next exchange starts, or the connection is closed when the
  request or response did not allow keep-alive. After a parse error nothing more is read;
  a 400 is queued behind the exchanges in flight (or the connection is dropped when the
  error is inside a body already being forwarded).
* **Upstream.** An exchange asks its endpoint pool for a connection. Until it is attached,
  request bytes (head and body) queue in ``Exchange.out``; once attached they are written
  through. Writes produced while one ``data_received`` runs are joined into one
  ``write()`` at its end (head and small body together; same for responses), which keeps
  a small proxied request at four syscalls.
* **Heads as received.** A bodiless request whose fields all go upstream unchanged
  (``RequestHeaders.plain``, no filter or rewrite) is forwarded as the client wrote it
  plus the X-Forwarded-* lines, when its head is the first of the read that completed it
  and began at its first byte (``msg.verbatim_request_head``). Likewise a response that
  needs no change is passed on as received (``exchange.Exchange.response_head``,
  ``UpstreamConnection.whole_message``).
* **Backpressure.** Each transport pauses its producer: when the upstream's write buffer
  passes the high-water mark, reading from the client pauses; when the client's write
  buffer does, reading from the upstream pauses. Reading from the client is also paused
  while too many bytes wait for a not-yet-attached upstream or too many pipelined
  requests are queued. ``ClientConnection._paused`` is a bit set of these reasons; the
  transport is paused iff it is non-zero.
* **Session persistence.** A rule with ``sessionPersistence`` picks its backendRef and
  endpoint through :mod:`turnout.dataplane.session` (the client's session, or a new
  one announced on the response); other rules pay one attribute test.
* **Upgrade.** A request with ``Connection: upgrade`` and ``Upgrade`` (a WebSocket
  handshake) and no body is forwarded with both headers; llhttp parses nothing after it,
  so the connection is not kept alive. A ``101`` from the backend is relayed and both
  connections become a byte tunnel (:mod:`turnout.dataplane.tunnel`); any other answer
  is relayed as a normal response, then the connection closes.
* **Failures.** No exception leaves a callback. Upstream connect failure or a reset
  before the response head gives 503 (a malformed response head: 502); after the head,
  the client connection is aborted (the only honest signal left). A request on a reused upstream connection without a
  body is retried once on a fresh connection, since the idle connection may have been
  closed by the backend just as it was reused. A failed connect (nothing sent yet) is
  retried once on another endpoint of the cluster; the endpoint is ejected for a while
  (:mod:`turnout.dataplane.health`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol, cast

import httptools

from turnout.dataplane import messages as msg
from turnout.dataplane import watchdog as wd
from turnout.dataplane.dispatch import route_request
from turnout.dataplane.exchange import (
    PAUSE_DONE,
    PAUSE_PIPELINE,
    PAUSE_UPSTREAM_FULL,
    Exchange,
)
from turnout.dataplane.limits import DEFAULT_LIMITS, Limits
from turnout.dataplane.messages import RequestHeaders
from turnout.dataplane.router import SocketTable, VirtualHostTable
from turnout.dataplane.stats import (
    BAD_REQUEST,
    HEADERS_TOO_LARGE,
    INTERNAL_ERROR,
    REQUEST_TIMEOUT,
    STATS,
    URI_TOO_LONG,
)
from turnout.dataplane.tunnel import Tunnel
from turnout.dataplane.upstream import HIGH_WATER, LOW_WATER

if TYPE_CHECKING:
    from turnout.dataplane import http2

log = logging.getLogger(__name__)

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 3.4


MAX_PIPELINED: Final = 16

# What the connection's deadline (see turnout.dataplane.watchdog) currently times.
_TIMING_HEAD: Final = 0  # reading a request head: header_timeout, then 408
_TIMING_IDLE: Final = 1  # keep-alive, nothing in flight: idle_timeout, then close
_TIMING_BUSY: Final = 2  # requests in flight: no deadline (route timeouts apply)

_CONNECT: Final = b"CONNECT"
_OPTIONS: Final = b"OPTIONS"
_HASH_BYTE: Final = 35  # ord("#")


def _not_connected(data: bytes) -> None:
    raise RuntimeError("write before connection_made")


class ServedConnection(Protocol):
    """A client connection as the server sees it (HTTP/1.1, or HTTP/2 after a hand-over)."""

    def shutdown(self) -> None: ...
    def abort(self) -> None: ...


class SocketState:
    """What the connections of one listening socket share; ``table`` is swapped on apply."""

    __slots__ = ("connections", "limits", "table")

    def __init__(self, table: SocketTable, limits: Limits = DEFAULT_LIMITS) -> None:
        self.table = table
        self.limits = limits
        self.connections: set[ServedConnection] = set()


class _StopParsing(Exception):
    """Raised from a parser callback to stop reading requests on this connection."""


class _Reject(Exception):
    """Raised from a parser callback: answer ``status`` and close."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class ClientConnection(asyncio.Protocol):
    """One client connection: parses requests, owns their exchanges, writes responses."""

    # X-Forwarded-Proto; TLS connections (turnout.dataplane.tls) override it and lookup.
    scheme = b"http"

    def __init__(self, state: SocketState) -> None:
        # per connection
        self.state = state
        self.limits = state.limits
        self._max_fields = state.limits.max_header_fields  # read per header line
        self._max_head = state.limits.max_head_bytes
        self.transport: asyncio.Transport | None = None
        self._send: Callable[[bytes], object] = _not_connected  # transport.write, bound once
        self.watchdog: wd.Watchdog | None = None
        self.deadline = 0.0  # see turnout.dataplane.watchdog
        self._timing = _TIMING_HEAD
        self._open = False
        parser = httptools.HttpRequestParser(self)
        self._parser = parser
        # Bound once: a call through an attribute of the compiled class skips the method
        # lookup on httptools' type that ``parser.feed_data(...)`` costs on every request.
        self._feed: Callable[[bytes], None] = parser.feed_data
        self._keep_alive: Callable[[], bool] = parser.should_keep_alive
        self._method: Callable[[], bytes] = parser.get_method
        self.client_ip = b""
        self.forwarded = b""
        # A list, not a deque: at most MAX_PIPELINED long, and list operations are
        # primitives of the compiled code where deque methods are Python calls.
        self.exchanges: list[Exchange] = []
        self._paused = 0
        self.write_paused = False
        self.draining = False
        self.feeding = False  # inside data_received: upstream writes wait for its end
        self._dirty: list[Exchange] = []  # exchanges with upstream bytes to flush after a feed
        self.upgrade_rest = b""  # bytes after an upgrade request's head: tunnel data
        self.tunnel: Tunnel | None = None  # after a 101: the connection is a byte tunnel
        # per request, while its head is parsed
        self._in_head = True
        self._head_bytes = 0
        self._feed_size = 0  # size of the buffer being parsed
        self._chunk = b""  # the buffer being parsed (see msg.verbatim_request_head)
        self._chunk_heads = -2
        self._heads = 0  # request heads parsed on this connection
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._names = msg.LowerNames()  # this client's field names, lower-cased
        self._valid_host = b""  # the last Host value found valid (see RequestHeaders)
        self._receiving: Exchange | None = None  # whose body the parser is reading
        # HTTP/2: the first bytes while they may be its connection preface; an h2c Upgrade.
        self._preface: bytes | None = b""
        self._h2c: http2.Upgrade | None = None

    # --- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport = transport
        STATS.downstream_connections += 1
        found = wd.for_running_loop()
        if found is not None:
            watchdog, loop = found
            limits = self.limits
            if len(watchdog.connections) >= limits.max_connections:
                self._paused = PAUSE_DONE
                transport.abort()  # over the per-worker limit: shed it before any work
                return
            watchdog.add(self, loop, min(limits.header_timeout, limits.idle_timeout))
            self.watchdog = watchdog
            self.deadline = watchdog.now + limits.header_timeout
        transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        self._send = transport.write
        self._open = True
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]).encode("ascii") if isinstance(peer, tuple) and peer else b"unknown"
        self.client_ip = ip
        self.forwarded = msg.forwarded_headers(ip, None, self.scheme)
        self.state.connections.add(self)

    def lookup(self, raw_host: bytes) -> VirtualHostTable | None:
        """The virtual host a request for ``raw_host`` (Host as received) is routed in."""
        return self.state.table.lookup(raw_host)

    def data_received(self, data: bytes) -> None:
        if self._preface is not None:  # only on the first bytes of a connection
            data = self._check_preface(data)
            if not data:
                return
        if self._paused & PAUSE_DONE:
            return
        if self._timing == _TIMING_IDLE and self.watchdog is not None:
            self._timing = _TIMING_HEAD  # a new request starts: its head must come in time
            self.deadline = self.watchdog.now + self.limits.header_timeout
        heads_before = self._heads if self._in_head else -1
        self._feed_size = len(data)
        self._chunk = data
        # Heads parsed before this read, if a head (if any) begins at its first byte: no
        # body being read, no request line or field of a head received so far. (A head
        # cut inside its method leaves no trace; see msg.verbatim_request_head.)
        self._chunk_heads = (
            self._heads if self._in_head and not self._url and not self._headers else -2
        )
        self.feeding = True
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self._h2c is not None:  # the rest of the connection is HTTP/2
                self.hand_over_to_h2(data[upgrade.args[0] :], self._h2c)
                return
            # llhttp stops after a request with Connection: upgrade. PAUSE_DONE is set (such
            # a request never keeps the connection alive); what followed its head belongs
            # to the protocol it switches to, if the backend agrees (see tunnel.py).
            self.upgrade_rest = data[upgrade.args[0] :]
        except httptools.HttpParserError as exc:
            if not self._paused & PAUSE_DONE:
                reject = exc.__context__
                self._parse_failed(reject.status if isinstance(reject, _Reject) else 400)
        except Exception:  # a bug: never let it escape into the event loop
            log.exception("error while handling a request")
            self._parse_failed(500)
        finally:
            self.feeding = False
            self._chunk = b""  # not kept while idle
        if heads_before == self._heads:
            # This data started inside a head and did not complete it: it is all head
            # bytes (a head that started mid-buffer escapes counting for one read). llhttp
            # has no size limit and httptools buffers header values, so bound it here.
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head and not self._paused & PAUSE_DONE:
                self._parse_failed(431)
        dirty = self._dirty
        if dirty:
            for exchange in dirty:
                exchange.flush_upstream()
            dirty.clear()

    def _check_preface(self, data: bytes) -> bytes:
        """HTTP/2 with prior knowledge (RFC 9113 3.3)? Returns the bytes left for HTTP/1.1."""
        seen = self._preface + data if self._preface else data
        size = min(len(seen), len(PREFACE))
        if seen[:size] != PREFACE[:size]:
            self._preface = None
            return seen
        if size < len(PREFACE):
            self._preface = seen  # a prefix of it so far: wait for more
            return b""
        self._preface = None
        self.hand_over_to_h2(seen)
        return b""

    def hand_over_to_h2(self, received: bytes, upgrade: http2.Upgrade | None = None) -> None:
        """The client speaks HTTP/2: :mod:`turnout.dataplane.http2` serves the transport."""
        from turnout.dataplane import http2  # not at import time: http2 builds on this module

        if not self._open or self.transport is None:
            return
        self._open = False
        self._paused |= PAUSE_DONE
        self.state.connections.discard(self)
        if self.watchdog is not None:
            self.watchdog.discard(self)
            self.watchdog = None
        http2.take_over(self, self.transport, received, upgrade)

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        self._paused |= PAUSE_DONE
        self.state.connections.discard(self)
        if self.watchdog is not None:
            self.watchdog.discard(self)
            self.watchdog = None
        exchanges = list(self.exchanges)
        self.exchanges.clear()
        self._receiving = None
        for exchange in exchanges:
            exchange.abort()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.exchanges:
            self.exchanges[0].client_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.exchanges:
            self.exchanges[0].client_paused(False)

    # --- httptools callbacks -----------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_request_line:
            raise _Reject(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        headers.append((name, value))
        if len(headers) > self._max_fields:
            raise _Reject(431)

    def on_headers_complete(self) -> None:
        if self._paused & PAUSE_DONE:
            raise _StopParsing
        self._timing = _TIMING_BUSY
        self.deadline = 0.0
        if self._head_bytes + self._feed_size > self._max_head:
            # The head may have arrived in one large read, past the count in data_received.
            size = len(self._url) + sum(len(n) + len(v) + 4 for n, v in self._headers)
            if size > self._max_head:
                raise _Reject(431)
        self._in_head = False
        self._head_bytes = 0
        self._heads += 1
        url = self._url
        raw = self._headers
        self._url = b""
        self._headers = []
        keep_alive = self._keep_alive()
        request = RequestHeaders(raw, self._names, self._valid_host)
        # llhttp accepts the versions 0.9, 1.0, 1.1 and 2.0 only, and keeps a request
        # without a Connection field alive by default only for 1.1 (llhttp_should_keep_alive):
        # so that case is 1.1 without get_http_version(), which formats a str per call.
        version = (
            "1.1" if keep_alive and not request.connection else self._parser.get_http_version()
        )
        if version != "1.1":
            if version != "1.0":
                raise _Reject(505)
            if request.chunked:
                raise _Reject(400)  # RFC 9112 6.1: Transfer-Encoding in 1.0 is faulty framing
        elif not request.host_count:
            raise _Reject(400)  # RFC 9112 3.2: an HTTP/1.1 request must have a Host
        if request.invalid:
            raise _Reject(400)
        if request.host_count:
            self._valid_host = request.host  # as received (before an absolute-form target)
        method = self._method()
        # The byte value, not b"#": bytes.__contains__ first tries its operand as an
        # integer (a bytes one costs a TypeError message), and find() parses its
        # arguments the slow way; with an int it is one memchr.
        if url[:1] != b"/" or _HASH_BYTE in url:
            url = _request_target(url, method, request)
        elif request.plain and version == "1.1" and self._heads == self._chunk_heads + 1:
            # The first head of this read, which began at its first byte (data_received).
            request.verbatim = msg.verbatim_request_head(self._chunk, method, url)
        if (
            request.upgrade
            and self._heads == 1
            and self.scheme == b"http"
            and version == "1.1"
            and not (request.content_length or request.chunked)
            and self._upgrade_h2c(url, raw)
        ):
            return
        exchange = Exchange(
            self, keep_alive=keep_alive and not self.draining, http10=version == "1.0"
        )
        self._receiving = exchange
        self.exchanges.append(exchange)
        route_request(exchange, method, url, request, self)
        if len(self.exchanges) == 1:
            exchange.start()
        elif len(self.exchanges) >= MAX_PIPELINED:
            self.set_paused(PAUSE_PIPELINE, True)

    def _upgrade_h2c(self, url: bytes, raw: list[tuple[bytes, bytes]]) -> bool:
        """``Upgrade: h2c`` on a first, bodiless request: HTTP/2 serves it (RFC 7540 3.2)."""
        from turnout.dataplane import http2

        self._h2c = http2.upgrade_request(self._method(), url, raw)
        return self._h2c is not None

    def on_body(self, data: bytes) -> None:
        exchange = self._receiving
        if exchange is not None:
            exchange.request_body(data)

    def on_message_complete(self) -> None:
        exchange = self._receiving
        self._receiving = None
        self._in_head = True
        if self._headers:
            # llhttp reports chunked trailer fields through on_header: they must not become
            # header fields of the next request on this connection. They are dropped.
            self._headers = []
        if exchange is None:
            return
        if not exchange.keep_alive:
            self.set_paused(PAUSE_DONE, True)  # read nothing after a last request
        exchange.request_complete()

    # --- used by exchanges -------------------------------------------------------------------

    def mark_dirty(self, exchange: Exchange) -> None:
        self._dirty.append(exchange)

    def write(self, data: bytes) -> None:
        if self._open:
            self._send(data)

    def set_paused(self, reason: int, paused: bool) -> None:
        """Pause or resume reading from the client for ``reason`` (see PAUSE_*)."""
        before = self._paused
        after = before | reason if paused else before & ~reason
        self._paused = after
        if not self._open or bool(before) == bool(after):
            return
        if after:
            self.transport.pause_reading()  # type: ignore[union-attr]
        else:
            self.transport.resume_reading()  # type: ignore[union-attr]

    def exchange_finished(self, exchange: Exchange) -> None:
        if self._open:  # else the response was cut off (aborted): not a completed one
            exchange.count_response()
        exchanges = self.exchanges
        if exchanges and exchanges[0] is exchange:
            del exchanges[0]
        if self._paused & PAUSE_UPSTREAM_FULL:
            self.set_paused(PAUSE_UPSTREAM_FULL, False)
        if not exchange.keep_alive or (self.draining and not exchanges):
            self.close()
            return
        if self._paused & PAUSE_PIPELINE and len(exchanges) < MAX_PIPELINED:
            self.set_paused(PAUSE_PIPELINE, False)
        if exchanges:
            exchanges[0].start()
        elif self.watchdog is not None and self._in_head:
            if self._url or self._headers or self._head_bytes:
                self._timing = _TIMING_HEAD  # the next head is already arriving
                self.deadline = self.watchdog.now + self.limits.header_timeout
            else:
                self._timing = _TIMING_IDLE
                self.deadline = self.watchdog.now + self.limits.idle_timeout

    def deadline_passed(self) -> None:
        """Called by the watchdog: a head took too long, or the connection sat idle."""
        if self.exchanges or not self._open:
            return
        if self._timing == _TIMING_HEAD and (self._url or self._headers or self._head_bytes):
            self._parse_failed(408)
        else:
            self.close()

    def close(self) -> None:
        """Close after the bytes already written are sent."""
        self.set_paused(PAUSE_DONE, True)
        if self._open:
            self._open = False
            self.transport.close()  # type: ignore[union-attr]

    def abort(self) -> None:
        if self.tunnel is not None:
            self.tunnel.abort()
        elif self.transport is not None:
            self._open = False
            self.transport.abort()

    def shutdown(self) -> None:
        """Graceful stop: close now when idle, else after the exchanges in flight; a
        tunnel (an upgraded connection) is closed now: it has no end of its own."""
        self.draining = True
        for exchange in self.exchanges:
            if not exchange.response_started:
                # Its response says "Connection: close", so the client does not send
                # another request on a connection about to close (and see it reset).
                exchange.keep_alive = False
        if self.tunnel is not None:
            self.tunnel.close()
        elif not self.exchanges:
            self.close()

    def start_tunnel(self, upstream: asyncio.Transport, to_client: bytes) -> None:
        """The upstream switched protocols: splice the two connections (tunnel.py)."""
        self.exchanges.clear()  # the upgrade request was the last one read
        self._timing = _TIMING_BUSY
        self.deadline = 0.0  # not idle, whatever happens on it
        tunnel = Tunnel(self.transport, upstream, self._tunnel_closed)  # type: ignore[arg-type]
        self.tunnel = tunnel
        rest = self.upgrade_rest
        self.upgrade_rest = b""
        tunnel.start(
            to_upstream=rest,
            to_client=to_client,
            high_water=HIGH_WATER,
            client_write_paused=self.write_paused,
        )

    def _tunnel_closed(self) -> None:
        self._open = False
        self.state.connections.discard(self)
        if self.watchdog is not None:
            self.watchdog.discard(self)
            self.watchdog = None

    def _parse_failed(self, status: int) -> None:
        """Hostile or broken input: answer ``status`` after what is in flight, then close."""
        self.set_paused(PAUSE_DONE, True)
        receiving = self._receiving
        self._receiving = None
        if receiving is not None and receiving.forwarding:
            # Part of this body may already be upstream; there is no clean way back.
            self.abort()
            return
        if receiving is not None:
            receiving.keep_alive = False
            receiving.request_complete()
            return
        STATS.answered_locally(_PARSE_REASONS.get(status, BAD_REQUEST))
        error = Exchange(self, keep_alive=False, http10=False)
        error.status = status
        error.local = msg.local_response(status, msg.CONN_CLOSE)
        error.request_done = True
        self.exchanges.append(error)
        if len(self.exchanges) == 1:
            error.start()


# Why _parse_failed answers a status (turnout.dataplane.stats); others (400, 505): BAD_REQUEST.
_PARSE_REASONS: Final = {
    408: REQUEST_TIMEOUT,
    414: URI_TOO_LONG,
    431: HEADERS_TOO_LARGE,
    500: INTERNAL_ERROR,
}


def _request_target(url: bytes, method: bytes, request: msg.RequestHeaders) -> bytes:
    """A request target that is not a plain origin-form path, as origin-form; else 400.

    Absolute-form ("http://h/p?q") becomes "/p?q" and its authority replaces Host (RFC
    9112 3.2.2), so routing and the upstream see the same host; asterisk-form is only for
    OPTIONS and authority-form only for CONNECT (answered 405 by route_request). A
    fragment, userinfo, another scheme or a relative path cannot be forwarded faithfully.
    """
    if method == _CONNECT:
        return url
    if b"#" in url:
        raise _Reject(400)  # RFC 9112 3.2: no fragment in a request target
    if url == b"*":
        if method == _OPTIONS:
            return url
        raise _Reject(400)
    scheme, sep, rest = url.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise _Reject(400)
    end = len(rest)
    for delimiter in (b"/", b"?"):
        found = rest.find(delimiter)
        if 0 <= found < end:
            end = found
    authority, target = rest[:end], rest[end:]
    if not authority or b"@" in authority or not msg.valid_host(authority):
        raise _Reject(400)  # RFC 9110 4.2.4: userinfo in an http(s) URI is an error
    request.host = authority
    return target if target[:1] == b"/" else b"/" + target
