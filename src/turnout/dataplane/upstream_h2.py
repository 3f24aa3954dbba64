"""upstream_h2: HTTP/2 cleartext (h2c) to backends -- one multiplexed connection per endpoint.

Place in the pipeline: :class:`turnout.dataplane.server.DataPlane` gives clusters whose
``ir.Cluster.protocol`` is ``"h2c"`` (Service port appProtocol ``kubernetes.io/h2c``,
``h2c`` or ``grpc``) an :class:`H2EndpointPool` per endpoint instead of an HTTP/1.1
:class:`~turnout.dataplane.upstream.EndpointPool`. Exchanges of HTTP/1.1 clients
(:mod:`turnout.dataplane.http1`) and streams of HTTP/2 clients
(:mod:`turnout.dataplane.http2`) use it exactly like the HTTP/1.1 pool.

Theory of operation
-------------------
* **One connection, many streams.** A pool keeps one live :class:`H2UpstreamConnection`
  and opens a stream on it per request; users beyond the peer's
  SETTINGS_MAX_CONCURRENT_STREAMS wait in the connection's queue. A connection that dies
  or sends GOAWAY is replaced for new streams at once; the streams it still serves
  finish (GOAWAY NO_ERROR, see :mod:`turnout.dataplane.h2base`).
* **An HTTP/1.1 face.** Each request gets an :class:`H2UpstreamStream`, a subclass of
  :class:`~turnout.dataplane.upstream.UpstreamConnection`: users write HTTP/1.1 request
  bytes to it (the head that ``route_request`` built with every filter applied, then the
  body, chunked or not), httptools parses them back, and the stream sends them as HTTP/2
  HEADERS / DATA / trailers. Responses come back as ``response_head`` /
  ``response_body`` / ``response_trailers`` (when the user has it: HTTP/2 clients) /
  ``response_complete``. Parsing our own head again costs a few microseconds; in return
  every filter, rewrite, retry and mirror works unchanged for h2c backends.
* **Flow control.** Response DATA is acknowledged only while the user does not pause
  reading (its client is not behind); request DATA waits in the stream for the backend's
  windows, and the user is paused (``upstream_paused``) while more than the high-water
  mark waits.
* **Retries.** A stream refused by the backend (REFUSED_STREAM, or above the
  last stream id of its GOAWAY) was not processed: it is reported as a lost reused
  connection, which the user retries once on a fresh stream when the request has no body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from typing import cast

import h2.config
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httptools

from turnout.dataplane import h2base
from turnout.dataplane import messages as msg
from turnout.dataplane.h2base import Headers
from turnout.dataplane.limits import DEFAULT_LIMITS, Limits
from turnout.dataplane.stats import STATS
from turnout.dataplane.upstream import (
    CONNECT_TIMEOUT,
    HIGH_WATER,
    LOW_WATER,
    EndpointPool,
    UpstreamConnection,
    UpstreamProtocolError,
    UpstreamUser,
)
from turnout.dataplane.upstream_tls import UpstreamTLS

log = logging.getLogger(__name__)

_CONFIG = h2.config.H2Configuration(client_side=True, header_encoding=None)
_TE_TRAILERS = (b"te", b"trailers")  # gRPC servers require it (and it is allowed in HTTP/2)
_DROP = msg.HOP_BY_HOP | {b"host"}


class H2EndpointPool(EndpointPool):
    """The h2c connection to one endpoint, shared by all requests to it."""

    def __init__(
        self,
        host: str,
        port: int,
        limits: Limits = DEFAULT_LIMITS,
        tls: UpstreamTLS | None = None,
    ) -> None:
        # With ``tls`` (a BackendTLSPolicy): HTTP/2 over TLS, ALPN h2, instead of h2c.
        super().__init__(host, port, limits=limits, tls=tls)
        self.conn: H2UpstreamConnection | None = None  # where new streams go
        self.connections: set[H2UpstreamConnection] = set()  # including draining ones
        self.waiting: list[UpstreamUser] = []  # users waiting for a connection
        self._connecting: asyncio.Task[None] | None = None

    def acquire(self, user: UpstreamUser, *, fresh: bool = False) -> None:
        conn = self.conn
        if conn is not None and conn.usable:
            conn.open_stream(user)
            return
        self.waiting.append(user)
        if self._connecting is None:
            task = asyncio.get_running_loop().create_task(self._connect())
            self._connecting = task
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                if self.tls is None:
                    _, conn = await loop.create_connection(
                        lambda: H2UpstreamConnection(self), self.host, self.port
                    )
                else:
                    _, conn = await loop.create_connection(
                        lambda: H2UpstreamConnection(self),
                        self.host,
                        self.port,
                        ssl=self.tls.h2_context,
                        server_hostname=self.tls.sni,
                    )
        except (OSError, TimeoutError) as exc:
            self._connect_failed(exc)
            return
        except asyncio.CancelledError:
            self._connect_failed(ConnectionAbortedError("proxy shutting down"))
            raise
        finally:
            self._connecting = None
        problem = self._tls_problem(conn)
        if problem is not None:
            if conn.transport is not None:
                conn.transport.abort()
            self._connect_failed(ssl.SSLCertVerificationError(problem))
            return
        if not conn.usable:
            self._connect_failed(ConnectionResetError("closed right after connect"))
            return
        self.conn = conn
        waiting, self.waiting = self.waiting, []
        for user in waiting:
            conn.open_stream(user)

    def _tls_problem(self, conn: H2UpstreamConnection) -> str | None:
        """Why a TLS connection may not be used: SANs (upstream_tls), or no ALPN h2."""
        if self.tls is None or conn.transport is None:
            return None
        problem = self.tls.check(conn.transport.get_extra_info("peercert"))
        if problem is not None:
            return problem
        ssl_object = conn.transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn != "h2":
            return f"the backend did not agree to HTTP/2 (ALPN {alpn or 'none'})"
        return None

    def _connect_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, ConnectionAbortedError):
            STATS.upstream_connect_failures += 1
            self.failed(exc)  # passive health checking: eject the endpoint for a while
        waiting, self.waiting = self.waiting, []
        for user in waiting:
            user.connect_failed(exc)

    def connection_gone(self, conn: H2UpstreamConnection) -> None:
        """``conn`` takes no new streams (GOAWAY, closed): the next request connects anew."""
        if self.conn is conn:
            self.conn = None

    def release(self, conn: UpstreamConnection) -> None:
        pass  # streams are not pooled; their connection is (see H2UpstreamStream.release)

    def discard(self, conn: UpstreamConnection) -> None:
        pass

    def close_idle(self, older_than: float | None = None) -> None:
        for conn in list(self.connections):
            if not conn.bound and (older_than is None or conn.idle_since < older_than):
                conn.close()

    def retire(self) -> None:
        self.retired = True
        self.close_idle()

    def close(self) -> None:
        self.retired = True
        for task in list(self.pending):
            task.cancel()
        for conn in list(self.connections):
            conn.close()


class H2UpstreamConnection(asyncio.Protocol):
    """One h2c connection to an endpoint, carrying many :class:`H2UpstreamStream` s."""

    def __init__(self, pool: H2EndpointPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.h2 = h2base.Connection(config=_CONFIG, concurrent_streams=h2base.MAX_UPSTREAM_STREAMS)
        self.streams: dict[int, H2UpstreamStream] = {}  # by stream id, once headers are sent
        self.bound: set[H2UpstreamStream] = set()  # handed to users, not yet released
        self.queue: deque[UpstreamUser] = deque()  # over the peer's concurrency limit
        self.usable = False  # takes new streams
        self.write_paused = False
        self.idle_since = 0.0
        self._feeding = False

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport = transport
        transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        self.usable = True
        self.pool.connections.add(self)
        h2conn = self.h2
        h2conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: h2base.STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: h2base.MAX_CONCURRENT_STREAMS,
            },
        )
        h2conn.initiate_connection()
        h2conn.increment_flow_control_window(h2base.CONNECTION_WINDOW - 65535)
        self.flush()

    def data_received(self, data: bytes) -> None:
        self._feeding = True
        touched: dict[int, H2UpstreamStream] = {}
        try:
            for event in self.h2.receive_data(data):
                stream = self._event(event)
                if stream is not None:
                    touched[stream.stream_id] = stream
        except h2.exceptions.ProtocolError as exc:
            log.warning("HTTP/2 protocol error from %s:%d: %s", self.pool.host, self.pool.port, exc)
            self._feeding = False
            self.flush()
            self._fail_all(UpstreamProtocolError(str(exc)))
            self.close()
            return
        finally:
            self._feeding = False
        for stream in touched.values():
            user = stream.user
            if user is not None:
                user.upstream_flush()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        self.transport = None
        self.pool.connections.discard(self)
        self.pool.connection_gone(self)
        # Requests still waiting for (the rest of) a response: lost with the connection.
        STATS.upstream_resets += sum(1 for stream in self.bound if stream.user is not None)
        self._fail_all(exc or ConnectionResetError("connection closed"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        for stream in list(self.streams.values()):
            stream.pump()
        self.flush()

    # --- h2 events -----------------------------------------------------------------------

    def _event(self, event: h2.events.Event) -> H2UpstreamStream | None:
        if isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event)
            return None
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self._dequeue()
            for stream in list(self.streams.values()):
                stream.pump()
            return None
        if isinstance(event, h2.events.WindowUpdated) and not event.stream_id:
            for stream in list(self.streams.values()):
                stream.pump()
            return None
        stream_id = getattr(event, "stream_id", None)
        found = self.streams.get(stream_id) if stream_id else None
        if found is None:
            if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id or 0)
            return None
        stream = found
        if isinstance(event, h2.events.DataReceived):
            stream.on_data(event.data or b"", event.flow_controlled_length or 0)
        elif isinstance(event, h2.events.ResponseReceived):
            stream.on_response(event.headers or [])
        elif isinstance(event, h2.events.TrailersReceived):
            stream.on_trailers(event.headers or [])
        elif isinstance(event, h2.events.StreamEnded):
            stream.on_end()
        elif isinstance(event, h2.events.StreamReset):
            stream.on_reset(event.error_code)
        elif isinstance(event, h2.events.WindowUpdated):
            stream.pump()
        return stream

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self.usable = False
        self.pool.connection_gone(self)
        last = event.last_stream_id if event.error_code == h2.errors.ErrorCodes.NO_ERROR else 0
        for stream_id, stream in list(self.streams.items()):
            if stream_id > (last or 0):
                stream.refused()  # never processed by the backend: safe to retry
        queue = list(self.queue)
        self.queue.clear()
        for user in queue:
            self.pool.acquire(user)
        if event.error_code != h2.errors.ErrorCodes.NO_ERROR or not self.bound:
            self.close()

    # --- used by the pool and streams ----------------------------------------------------

    def open_stream(self, user: UpstreamUser) -> None:
        limit = min(self.h2.remote_settings.max_concurrent_streams, h2base.MAX_UPSTREAM_STREAMS)
        if len(self.bound) >= limit:
            self.queue.append(user)
            return
        stream = H2UpstreamStream(self)
        self.bound.add(stream)
        stream.bind(user)

    def stream_done(self, stream: H2UpstreamStream) -> None:
        if stream.stream_id and self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
        self.bound.discard(stream)
        if self.queue and self.usable:
            self._dequeue()
        if not self.bound:
            self.idle_since = asyncio.get_running_loop().time()
            if not self.usable or self.pool.retired:
                self.close()
        self.flush()

    def _dequeue(self) -> None:
        limit = min(self.h2.remote_settings.max_concurrent_streams, h2base.MAX_UPSTREAM_STREAMS)
        while self.queue and len(self.bound) < limit and self.usable:
            self.open_stream(self.queue.popleft())

    def flush(self) -> None:
        if self._feeding or self.transport is None:
            return
        data = self.h2.data_to_send()
        if data:
            self.transport.write(data)

    def close(self) -> None:
        self.usable = False
        self.pool.connection_gone(self)
        if self.transport is not None:
            self.flush()
            self.transport.close()

    def _fail_all(self, exc: BaseException) -> None:
        self.usable = False
        streams = list(self.bound)
        self.streams.clear()
        self.bound.clear()
        for stream in streams:
            stream.lost(exc)
        queue = list(self.queue)
        self.queue.clear()
        for user in queue:
            user.connect_failed(exc)


class H2UpstreamStream(UpstreamConnection):
    """One request on an h2c connection, with the interface of an HTTP/1.1 connection.

    Users write the HTTP/1.1 request bytes; httptools parses them back into the fields and
    body sent as HTTP/2 (see the module docstring for why).
    """

    def __init__(self, conn: H2UpstreamConnection) -> None:  # no super(): no socket here
        self.h2conn = conn
        self.pool = conn.pool
        self.transport = None
        self.requests = 1
        self.idle_since = 0.0
        self.reading_paused = False
        self.closed = False
        self.user: UpstreamUser | None = None
        self.stream_id = 0
        self.parser = httptools.HttpRequestParser(self)  # type: ignore[assignment]
        self._url = b""
        self._fields: Headers = []
        self._trailers: Headers | None = None  # request trailers, after the body
        self._sending: deque[bytes] = deque()
        self._sending_size = 0
        self._ending = False  # END_STREAM goes after what is in _sending
        self._sent_end = False
        self._received_end = False
        self._paused_user = False
        self._unacked = 0
        # UpstreamConnection's state for passing responses on as received: never here
        # (what the user gets is rebuilt from HTTP/2 frames), but its parser callbacks read it.
        self._chunk = b""
        self._at_start = False
        self._began = False
        self.head_end = 0
        self._body_seen = 0
        self.names = msg.LowerNames()  # read by Exchange.response_head

    # --- the HTTP/1.1 connection interface (used by exchanges, streams, mirrors) ----------

    def bind(self, user: UpstreamUser) -> None:
        self.user = user
        user.attached(self)

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:  # our own bytes: a bug, not the client's
            log.error("cannot translate a request to HTTP/2: %s", exc)
            self._fail(UpstreamProtocolError(str(exc)))
            return
        self.pump()
        self.h2conn.flush()

    def pause_reading(self, paused: bool) -> None:
        self.reading_paused = paused
        if not paused and self._unacked and self.stream_id and not self.closed:
            self.h2conn.h2.acknowledge_received_data(self._unacked, self.stream_id)
            self._unacked = 0
            self.h2conn.flush()

    def release(self, keep_alive: bool) -> None:
        """The user is done with the response: the stream ends (reset if still open)."""
        self.user = None
        self._finish(h2.errors.ErrorCodes.CANCEL)

    def close(self) -> None:
        self.user = None
        self._finish(h2.errors.ErrorCodes.CANCEL)

    def _finish(self, code: h2.errors.ErrorCodes) -> None:
        if self.closed:
            return
        self.closed = True
        conn = self.h2conn
        ended = self._sent_end and self._received_end
        if self.stream_id and not ended and conn.transport is not None:
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                conn.h2.reset_stream(self.stream_id, code)
        conn.stream_done(self)

    # --- httptools callbacks: the request as the user wrote it ----------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if self._trailers is not None:
            self._trailers.append((lname, value))
        elif lname == b"host":
            self._fields.append((b":authority", value))
        elif lname not in _DROP:
            self._fields.append((lname, value))

    def on_headers_complete(self) -> None:
        method = self.parser.get_method()  # type: ignore[attr-defined]
        pseudo: Headers = [(b":method", method), (b":scheme", b"http"), (b":path", self._url)]
        fields = self._fields
        authority = [f for f in fields if f[0] == b":authority"]
        rest = [f for f in fields if f[0] != b":authority"]
        self._fields = [*pseudo, *authority[:1], *rest, _TE_TRAILERS]
        self._trailers = []

    def on_body(self, body: bytes) -> None:
        self._sending.append(body)
        self._sending_size += len(body)

    def on_message_complete(self) -> None:
        self._ending = True

    def _start(self) -> bool:
        """Send the request HEADERS (with END_STREAM when there is nothing else to send)."""
        conn = self.h2conn
        if not conn.usable:
            self._fail(ConnectionResetError("the h2c connection went away"))
            return False
        stream_id = conn.h2.get_next_available_stream_id()
        self.stream_id = stream_id
        conn.streams[stream_id] = self
        end = self._ending and not self._sending and not self._trailers
        conn.h2.send_headers(stream_id, self._fields, end_stream=end)
        self._sent_end = end
        return not end

    def pump(self) -> None:
        """Send queued request DATA within the backend's windows; END_STREAM at the end."""
        if self.closed or self._sent_end or self._trailers is None:
            return  # done, or the head is not complete yet
        if not self.stream_id and not self._start():
            return
        h2conn = self.h2conn.h2
        sid = self.stream_id
        sending = self._sending
        while sending and not self.h2conn.write_paused:
            window = min(h2conn.local_flow_control_window(sid), h2conn.max_outbound_frame_size)
            if window <= 0:
                break
            chunk = sending[0]
            if len(chunk) > window:
                sending[0] = chunk[window:]
                chunk = chunk[:window]
            else:
                sending.popleft()
            self._sending_size -= len(chunk)
            h2conn.send_data(sid, chunk)
        if not sending and self._ending:
            trailers = self._trailers
            if trailers:
                h2conn.send_headers(sid, trailers, end_stream=True)
            else:
                h2conn.end_stream(sid)
            self._sent_end = True
        user = self.user
        if user is not None:
            if self._sending_size > HIGH_WATER and not self._paused_user:
                self._paused_user = True
                user.upstream_paused(True)
            elif self._paused_user and self._sending_size < LOW_WATER:
                self._paused_user = False
                user.upstream_paused(False)

    # --- h2 events from the connection ----------------------------------------------------

    def on_response(self, fields: list[tuple[bytes, bytes]]) -> None:
        health = self.pool.health
        if health.failures:
            health.succeeded()
        user = self.user
        if user is None:
            return
        status = 0
        raw: Headers = []
        for name, value in fields:
            if name == b":status":
                status = int(value)
            elif name[:1] != b":":
                raw.append((name, value))
        try:
            no_body = user.response_head(status, raw, True)
        except UpstreamProtocolError as exc:
            self._fail(exc)
            return
        if no_body and self.user is user:
            user.response_complete()

    def on_data(self, data: bytes, size: int) -> None:
        user = self.user
        if user is not None and data:
            user.response_body(data)
        if size:
            if self.reading_paused and user is not None:
                self._unacked += size  # acknowledged when the user resumes reading
            else:
                self.h2conn.h2.acknowledge_received_data(size, self.stream_id)

    def on_trailers(self, fields: list[tuple[bytes, bytes]]) -> None:
        user = self.user
        handler = getattr(user, "response_trailers", None)
        if handler is not None:
            handler(fields)  # HTTP/2 clients get them; HTTP/1.1 responses drop them

    def on_end(self) -> None:
        self._received_end = True
        user = self.user
        if user is not None:
            user.response_complete()  # the user releases us from there
        if self._sent_end and not self.closed and self.user is None:
            self._finish(h2.errors.ErrorCodes.NO_ERROR)

    def on_reset(self, code: int | None) -> None:
        self._received_end = self._sent_end = True  # nothing more may be sent either way
        if code == h2.errors.ErrorCodes.REFUSED_STREAM:
            self.refused()
            return
        if self.user is not None:
            STATS.upstream_resets += 1
        self.lost(ConnectionResetError(f"stream reset by the backend (error code {code})"))

    def refused(self) -> None:
        """Not processed by the backend (RFC 9113 8.7): the user may retry it."""
        self.requests = 2  # reported like a reused connection closed under the request
        self.lost(ConnectionResetError("stream refused by the backend"))

    def lost(self, exc: BaseException) -> None:
        user = self.user
        self.user = None
        self._finish(h2.errors.ErrorCodes.CANCEL)
        if user is not None:
            user.upstream_lost(self, exc)

    def _fail(self, exc: BaseException) -> None:
        self.lost(exc)
