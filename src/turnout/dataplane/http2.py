"""http2: the client side of HTTP/2 -- one protocol object per connection, one stream object each.

Place in the pipeline: a connection starts as an HTTP/1.1
:class:`turnout.dataplane.http1.ClientConnection`, which hands its transport over to
:func:`take_over` when the client speaks HTTP/2: TLS with ALPN ``h2``
(:mod:`turnout.dataplane.tls`), the connection preface on a plaintext socket ("prior
knowledge"), or ``Upgrade: h2c`` (RFC 7540 3.2). Each stream is routed by
:func:`turnout.dataplane.http1.route_request` with the same tables, filters, timeouts and
retries as an HTTP/1.1 request, and forwarded over the same upstream pools.

Theory of operation
-------------------
* **Sans-IO core.** The ``h2`` library turns bytes into events and produces the bytes to
  send; this module only reacts to events and writes ``data_to_send()`` once per batch
  (at the end of ``data_received``, or of an upstream callback).
* **Streams speak HTTP/1.1 upstream.** An :class:`H2Stream` offers the surface of an
  :class:`~turnout.dataplane.exchange.Exchange` that ``route_request`` and the upstream
  pools use: it is given an HTTP/1.1 request head and writes request bytes (chunked
  when the client sent no content-length) to an upstream connection, and receives
  response events from it. h2c clusters use :mod:`turnout.dataplane.upstream_h2`, whose
  streams present the same connection interface and translate back to HTTP/2 there.
* **Flow control, request direction.** Received DATA is acknowledged to the client
  (``acknowledge_received_data``) only once it has been written to the upstream
  transport and that transport is not paused; so a slow backend stops the client within
  one stream window (:data:`~turnout.dataplane.h2base.STREAM_WINDOW`), and all streams of
  a connection together within the connection window.
* **Flow control, response direction.** Response bytes wait in the stream's ``pending``
  queue until the client's stream and connection windows (and the transport's write
  buffer) allow them; above the high-water mark the upstream stops being read, and
  resumes when the queue drains (``WindowUpdated``, ``resume_writing``).
* **Stream states.** A stream is over when its request was read completely and its
  response sent completely (or when either side reset it). A response finished before
  its request is followed by RST_STREAM(NO_ERROR) (RFC 9113 8.1).
* **Limits and shutdown.** At most :data:`~turnout.dataplane.h2base.MAX_CONCURRENT_STREAMS`
  streams run at once; more are refused with REFUSED_STREAM (a client may retry them).
  ``shutdown()`` sends GOAWAY naming the last stream accepted, lets those finish and then
  closes; ``abort()`` drops everything.
* **gRPC.** A request whose content-type starts with ``application/grpc`` that the
  gateway answers itself gets a trailers-only gRPC response (:func:`grpc_status`), so
  GRPCRoute rules, compiled into the same tables, get it too.
* **Failures.** No exception leaves a callback. A protocol error from the client ends the
  connection with GOAWAY; an upstream failing after the response started resets only its
  stream (INTERNAL_ERROR).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, cast

import h2.config
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from turnout.dataplane import h2base
from turnout.dataplane import messages as msg
from turnout.dataplane import watchdog as wd
from turnout.dataplane.dispatch import route_request
from turnout.dataplane.forwarding import Forwarding
from turnout.dataplane.h2base import Headers
from turnout.dataplane.limits import Limits
from turnout.dataplane.policy import PolicyRun
from turnout.dataplane.upstream import (
    HIGH_WATER,
    LOW_WATER,
    EndpointPool,
    UpstreamConnection,
    UpstreamProtocolError,
)

if TYPE_CHECKING:
    from turnout.dataplane.http1 import ClientConnection
    from turnout.dataplane.mirror import MirrorExchange
    from turnout.dataplane.router import Target

log = logging.getLogger(__name__)


_CONFIG = h2.config.H2Configuration(client_side=False, header_encoding=None)
_GRPC = b"application/grpc"
_HEAD = b"HEAD"

# gRPC status for a local answer of the gateway, by HTTP status (the gRPC project's
# http-grpc-status-mapping, with 500 and 504 made specific: an invalid backendRef is
# "unavailable", a gateway timeout is a deadline).
_GRPC_STATUS: dict[int, tuple[int, bytes]] = {
    400: (13, b"bad request"),
    401: (16, b"unauthenticated"),
    403: (7, b"permission denied"),
    404: (12, b"no route for this method"),
    421: (14, b"misdirected request"),
    429: (14, b"too many requests"),
    500: (14, b"no valid backend"),
    502: (14, b"bad response from the backend"),
    503: (14, b"backend unavailable"),
    504: (4, b"gateway timeout"),
}


def grpc_status(status: int) -> tuple[int, bytes]:
    """(grpc-status, grpc-message) for an HTTP status the gateway answers a gRPC call with."""
    return _GRPC_STATUS.get(status, (2, b"HTTP status %d" % status))


class Upgrade:
    """An HTTP/1.1 request that asked for ``Upgrade: h2c``: it becomes stream 1."""

    __slots__ = ("headers", "method", "settings", "url")

    def __init__(self, method: bytes, url: bytes, headers: Headers, settings: bytes) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.settings = settings


def upgrade_request(method: bytes, url: bytes, raw: Headers) -> Upgrade | None:
    """The h2c Upgrade (RFC 7540 3.2) an HTTP/1.1 request asks for, if it is well-formed."""
    upgrade = settings = None
    tokens: set[bytes] = set()
    count = 0
    for name, value in raw:
        lname = name.lower()
        if lname == b"upgrade":
            upgrade = {t.strip().lower() for t in value.split(b",")}
        elif lname == b"connection":
            tokens |= {t.strip().lower() for t in value.split(b",")}
        elif lname == b"http2-settings":
            settings = value.strip()
            count += 1
    if not upgrade or b"h2c" not in upgrade or count != 1 or settings is None:
        return None
    if not {b"upgrade", b"http2-settings"} <= tokens:
        return None
    settings += b"=" * (-len(settings) % 4)  # token68 may leave out the padding h2 needs
    try:
        decoded = base64.urlsafe_b64decode(settings)
    except ValueError:
        return None  # not served as an upgrade: an ordinary HTTP/1.1 request
    if len(decoded) % 6:
        return None  # SETTINGS entries are 6 bytes each
    return Upgrade(method, url, raw, settings)


SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"


def take_over(
    origin: ClientConnection,
    transport: asyncio.Transport,
    received: bytes,
    upgrade: Upgrade | None = None,
) -> H2ClientConnection:
    """Serve ``transport`` with HTTP/2 from now on; ``received`` are bytes already read."""
    conn = H2ClientConnection(origin)
    transport.set_protocol(conn)
    conn.start(transport, upgrade)
    if received and conn.open:
        conn.data_received(received)
    return conn


class H2ClientConnection(asyncio.Protocol):
    """One HTTP/2 client connection (see the module docstring)."""

    def __init__(self, origin: ClientConnection) -> None:
        # what the HTTP/1.1 connection it started as knew
        self.state = origin.state
        self.limits = origin.limits
        self.scheme = origin.scheme
        self.client_ip = origin.client_ip
        self.forwarded = origin.forwarded
        self.origin = origin  # routes within its tables (TLS: the SNI's listener)
        # per connection
        self.transport: asyncio.Transport | None = None
        self.h2 = h2base.Connection(config=_CONFIG)
        self.streams: dict[int, H2Stream] = {}
        self.open = False
        self.write_paused = False
        self.feeding = False
        self.draining = False
        self.last_stream = 2**31 - 1  # streams above it are refused (after our GOAWAY)
        self.watchdog: wd.Watchdog | None = None
        self.deadline = 0.0

    # --- set up ----------------------------------------------------------------------------

    def start(self, transport: asyncio.Transport, upgrade: Upgrade | None) -> None:
        self.transport = transport
        self.open = True
        transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        self.state.connections.add(self)
        found = wd.for_running_loop()
        if found is not None:
            watchdog, loop = found
            watchdog.add(self, loop, self.limits.idle_timeout)
            self.watchdog = watchdog
        h2conn = self.h2
        h2conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: h2base.MAX_CONCURRENT_STREAMS,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: h2base.STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: self.limits.max_head_bytes,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        if upgrade is None:
            h2conn.initiate_connection()
        else:
            transport.write(SWITCHING)
            h2conn.initiate_upgrade_connection(upgrade.settings)
        h2conn.enforce_streams_ourselves()
        h2conn.increment_flow_control_window(h2base.CONNECTION_WINDOW - 65535)
        if upgrade is not None:
            self._upgraded_request(upgrade)
        self._idle()
        self.flush()

    def _upgraded_request(self, upgrade: Upgrade) -> None:
        """RFC 7540 3.2: the request that carried the Upgrade is stream 1, half-closed."""
        fields: Headers = [(b":method", upgrade.method), (b":path", upgrade.url)]
        fields += [(b":scheme", b"http")]
        for name, value in upgrade.headers:
            lname = name.lower()
            if lname == b"host":
                fields.append((b":authority", value))
            elif lname not in _UPGRADE_DROP:
                fields.append((lname, value))
        stream = H2Stream(self, 1)
        self.streams[1] = stream
        stream.route(fields, end_stream=True)

    # --- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Only reached when used directly as a protocol factory (tests); take_over calls start.
        self.start(cast(asyncio.Transport, transport), None)

    def data_received(self, data: bytes) -> None:
        if not self.open:
            return
        self.feeding = True
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("HTTP/2 protocol error from %s: %s", self.client_ip, exc)
            self.feeding = False
            self.flush()  # the GOAWAY h2 queued
            self.close()
            return
        try:
            for event in events:
                self._event(event)
        except Exception:  # a bug: never let it escape into the event loop
            log.exception("error while handling an HTTP/2 connection")
            self.feeding = False
            self.abort()
            return
        finally:
            self.feeding = False
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.state.connections.discard(self)
        if self.watchdog is not None:
            self.watchdog.discard(self)
            self.watchdog = None
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            stream.abort()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.pump_all()
        self.flush()

    # --- h2 events -------------------------------------------------------------------------

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.request_body(event.data or b"", event.flow_controlled_length or 0)
            else:
                self.ack(event.flow_controlled_length or 0, event.stream_id or 0)
        elif isinstance(event, h2.events.RequestReceived):
            self._request(event.stream_id or 0, event.headers or [], event.stream_ended)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.request_complete()
        elif isinstance(event, h2.events.WindowUpdated):
            if event.stream_id:
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.pump()
            else:
                self.pump_all()
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                stream.abort()
            self._idle()
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.request_trailers(event.headers or [])
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.pump_all()  # the initial stream window may have grown
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._peer_goaway(event)

    def _request(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], stream_ended: object
    ) -> None:
        if stream_id > self.last_stream or len(self.streams) >= h2base.MAX_CONCURRENT_STREAMS:
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        stream = H2Stream(self, stream_id)
        self.streams[stream_id] = stream
        self.deadline = 0.0
        stream.route(headers, end_stream=stream_ended is not None)

    def _peer_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        if event.error_code != h2.errors.ErrorCodes.NO_ERROR:
            self.abort()
            return
        self.draining = True  # the client opens no more streams: close once these are done
        if not self.streams:
            self.close()

    # --- used by streams -------------------------------------------------------------------

    def ack(self, size: int, stream_id: int) -> None:
        if size and self.open:
            self.h2.acknowledge_received_data(size, stream_id)

    def flush(self) -> None:
        """Write what h2 produced; deferred to the end of ``data_received`` while feeding."""
        if self.feeding or not self.open:
            return
        data = self.h2.data_to_send()
        if data:
            self.transport.write(data)  # type: ignore[union-attr]

    def pump_all(self) -> None:
        for stream in list(self.streams.values()):
            if stream.pending or stream.upstream_done:
                stream.pump()

    def stream_finished(self, stream: H2Stream) -> None:
        if self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
        self._idle()

    def _idle(self) -> None:
        if self.streams:
            return
        if self.draining:
            self.close()
        elif self.watchdog is not None:
            self.deadline = self.watchdog.now + self.limits.idle_timeout

    def deadline_passed(self) -> None:
        """Called by the watchdog: the connection sat idle (no streams) too long."""
        if not self.streams and self.open:
            self.shutdown()

    # --- shutdown --------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Graceful stop: GOAWAY, let the streams already accepted finish, then close."""
        if not self.open or (self.draining and self.last_stream != 2**31 - 1):
            return
        self.draining = True
        self.last_stream = self.h2.highest_inbound_stream_id
        self.flush()
        if self.open:
            self.transport.write(self.h2.goaway_frame(self.last_stream))  # type: ignore[union-attr]
        if not self.streams:
            self.close()

    def close(self) -> None:
        if self.open:
            self.flush()
            self.open = False
            self.transport.close()  # type: ignore[union-attr]

    def abort(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.abort()


# Fields of an HTTP/1.1 Upgrade request that do not become HTTP/2 fields.
_UPGRADE_DROP = msg.HOP_BY_HOP | {b"http2-settings", b"host"}
# Fields of a local HTTP/1.1 answer that HTTP/2 does not carry.
_LOCAL_DROP = msg.HOP_BY_HOP


class H2Stream(Forwarding):
    """One request/response exchange on an HTTP/2 connection.

    It offers what :func:`turnout.dataplane.http1.route_request` sets up on an exchange
    (``local``, ``local_status``, ``forward``...), what upstream connections report to
    (:class:`turnout.dataplane.upstream.UpstreamUser`) and what
    :class:`turnout.dataplane.policy.PolicyRun` drives.
    """

    __slots__ = (
        "_local",
        "chunked",
        "client",
        "failed_over",
        "grpc",
        "has_body",
        "head",
        "head_request",
        "headers_sent",
        "interim",
        "keep_alive",
        "mirrors",
        "out",
        "out_size",
        "pending",
        "pending_size",
        "pool",
        "reading_paused",
        "request_done",
        "reset",
        "response",
        "response_done",
        "response_started",
        "retried",
        "run",
        "stream_id",
        "target",
        "trailers",
        "unacked",
        "upgrade",
        "upstream",
        "upstream_done",
        "upstream_framed",
        "upstream_full",
        "upstream_keep",
    )

    def __init__(self, client: H2ClientConnection, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.keep_alive = True  # route_request may clear it; meaningless for HTTP/2
        self.upgrade: bytes | None = None  # HTTP/1.1 Upgrade (WebSocket): never over HTTP/2
        self.head_request = False
        self.has_body = False
        # RequestMirror copies still taking the request body (http1._start_mirrors).
        self.mirrors: list[MirrorExchange] | None = None
        self.grpc = False
        # what to do: a local response, or forward to `pool`
        self._local: tuple[int, Headers, bytes] | None = None
        self.pool: EndpointPool | None = None
        self.target: Target | None = None
        self.run: PolicyRun | None = None
        # request direction
        self.head = b""
        self.out: list[bytes] = []  # bytes for the upstream, not yet written
        self.out_size = 0
        self.chunked = False
        self.request_done = False
        self.retried = False
        self.failed_over = False  # a failed connect was retried on another endpoint
        self.unacked = 0  # flow-controlled bytes received but not yet acknowledged
        self.upstream_full = False
        # response direction
        self.upstream: UpstreamConnection | None = None
        self.response: Headers | None = None  # fields not yet sent
        self.headers_sent = False
        self.response_started = False
        self.interim = False
        self.upstream_framed = True
        self.upstream_keep = False
        self.upstream_done = False  # the upstream response is complete
        self.response_done = False  # nothing more will be sent to the client
        self.reset = False
        self.pending: deque[bytes] = deque()
        self.pending_size = 0
        self.reading_paused = False
        self.trailers: Headers | None = None

    # --- routing (see route_request) -------------------------------------------------------

    def _limits(self) -> Limits:
        return self.client.limits

    def route(self, fields: Headers, *, end_stream: bool) -> None:
        method = path = authority = b""
        raw: Headers = []
        cookies: list[bytes] = []
        has_length = False
        for name, value in fields:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                continue
            if name == b"cookie":
                cookies.append(value)  # RFC 9113 8.2.3: split crumbs are joined for HTTP/1.1
                continue
            if name == b"host":
                if authority:
                    continue  # :authority wins (RFC 9113 8.3.1)
                authority = value
                continue
            if name == b"content-length":
                has_length = True
            elif name == b"content-type" and value.startswith(_GRPC):
                self.grpc = True
            raw.append((name, value))
        raw.append((b"host", authority))
        if cookies:
            raw.append((b"cookie", b"; ".join(cookies)))
        if not end_stream and not has_length:
            raw.append((b"transfer-encoding", b"chunked"))  # the body is framed upstream
        request = msg.RequestHeaders(raw)
        # RFC 9113 8.3.1: :path is origin-form ("*" only for OPTIONS, not routed here).
        if not method or path[:1] != b"/" or path.find(b"#") != -1 or request.invalid:
            self.local_status(400)
        else:
            # Routed within what the HTTP/1.1 connection it started as knew (TLS: its SNI).
            route_request(self, method, path, request, self.client.origin)
        self.request_done = end_stream  # HEADERS with END_STREAM: no body follows
        self.start()

    def local_answer(self, response: bytes) -> None:
        """route_request writes local answers as HTTP/1.1 bytes (messages.py): parse them."""
        head, _, body = response.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        fields: Headers = [(b":status", lines[0][9:12])]
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname not in _LOCAL_DROP:
                fields.append((lname, value.strip()))
        self._local = (int(lines[0][9:12]), fields, body)

    def connection_header(self) -> bytes:
        return msg.CONN_KEEP

    def local_status(self, status: int) -> None:
        if self.grpc:
            code, message = grpc_status(status)
            fields: Headers = [
                (b":status", b"200"),
                (b"content-type", b"application/grpc"),
                (b"grpc-status", b"%d" % code),
                (b"grpc-message", message),
            ]
            self._local = (status, fields, b"")
        else:
            response = msg.local_response(status, msg.CONN_KEEP)
            self.local_answer(response)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        local = self._local
        if local is not None:
            _status, fields, body = local
            self.respond_locally(fields, body)
        elif self.pool is not None:
            if self.run is not None:
                self.run.started()
            self._acquire(self.pool)
        self.client.flush()

    def respond_locally(self, fields: Headers, body: bytes) -> None:
        self.response_started = True
        self.upstream_done = True
        self.headers_sent = True
        if self.head_request:
            body = b""
        h2conn = self.client.h2
        h2conn.send_headers(self.stream_id, fields, end_stream=not body)
        if body:
            self.pending.append(body)
            self.pending_size = len(body)
            self.pump()
        else:
            self._response_sent()

    def abort(self) -> None:
        """The client reset the stream or went away: drop the upstream (state unknown)."""
        self.reset = True
        self.response_done = True
        self.pending.clear()
        mirrors, self.mirrors = self.mirrors, None
        for mirror in mirrors or ():
            mirror.drop()  # the rest of the body will not come
        if self.run is not None:
            self.run.cancel()
        self._drop_upstream()

    def _cut_short(self, status: int, code: h2.errors.ErrorCodes) -> None:
        """The response started, then failed (timeout, upstream lost): say so to the client.

        A gRPC call gets the trailers a gRPC server would have sent (grpc-status for
        ``status``) after what was already forwarded; anything else is reset with ``code``.
        """
        if self.upstream_done:
            return  # all of the response is here, only waiting for the client's window
        if not self.grpc:
            self._reset(code)
            return
        if self.run is not None:
            self.run.cancel()
        self._drop_upstream()
        grpc_code, message = grpc_status(status)
        self.trailers = [(b"grpc-status", b"%d" % grpc_code), (b"grpc-message", message)]
        self.upstream_done = True
        self.pump()

    def _reset(self, code: h2.errors.ErrorCodes) -> None:
        """End the stream towards the client (the HTTP/2 way to say "truncated")."""
        if not self.reset and self.client.open:
            with contextlib.suppress(h2.exceptions.StreamClosedError):  # both sides ended it
                self.client.h2.reset_stream(self.stream_id, code)
        self.abort()
        self.client.stream_finished(self)
        self.client.flush()

    def _response_sent(self) -> None:
        self.response_done = True
        if self.run is not None:
            self.run.cancel()
        if self.request_done:
            self.client.stream_finished(self)
        elif self.pool is None or self.upstream is None:
            # Answered before the request was read (RFC 9113 8.1): stop the client sending.
            self._reset(h2.errors.ErrorCodes.NO_ERROR)

    # --- request direction -----------------------------------------------------------------

    def request_body(self, data: bytes, size: int) -> None:
        if self.chunked and data:
            data = b"%x\r\n" % len(data) + data + b"\r\n"
        if self.mirrors is not None and data:
            for mirror in self.mirrors:
                mirror.send(data)  # framed as for the primary backend
        if self.pool is None or self.response_done:
            self.client.ack(size, self.stream_id)  # answered locally: read and dropped
            return
        self.unacked += size
        if data:
            self.send_upstream(data)

    def request_trailers(self, fields: Headers) -> None:
        if self.pool is None or self.response_done or not self.chunked:
            return  # trailers need chunked framing upstream (no content-length was sent)
        parts = [b"0\r\n"]
        for name, value in fields:
            if name[:1] != b":":
                parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self.chunked = False  # the last chunk is sent here, not at the end of the stream
        last = b"".join(parts)
        for mirror in self.mirrors or ():
            mirror.send(last)
        self.send_upstream(last)

    def request_complete(self) -> None:
        self.request_done = True
        mirrors, self.mirrors = self.mirrors, None
        for mirror in mirrors or ():
            if self.chunked:
                mirror.send(msg.LAST_CHUNK)
            mirror.finish()
        if self.chunked and self.pool is not None and not self.response_done:
            self.send_upstream(msg.LAST_CHUNK)
        if self.response_done and not self.reset:
            self.client.stream_finished(self)

    def send_upstream(self, data: bytes) -> None:
        if self.run is not None:
            self.run.record(data)
        self.out.append(data)
        self.out_size += len(data)
        if self.upstream is not None:
            self.flush_upstream()

    def flush_upstream(self) -> None:
        upstream = self.upstream
        out = self.out
        if upstream is None:
            return
        if out:
            upstream.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            self.out_size = 0
        if not self.upstream_full and self.unacked:
            # Written onward and the upstream takes more: let the client send more.
            self.client.ack(self.unacked, self.stream_id)
            self.unacked = 0

    # --- UpstreamUser ----------------------------------------------------------------------

    def attached(self, conn: UpstreamConnection) -> None:
        if not self._take_connection(conn):
            return
        self.upstream_full = False
        if self.pending_size > HIGH_WATER:
            self.reading_paused = True
            conn.pause_reading(True)
        self.flush_upstream()
        self.client.flush()

    def connect_failed(self, exc: BaseException) -> None:
        run = self.run
        if run is not None:
            if not run.waiting:
                return
            run.waiting = False
            if run.can_retry():
                run.schedule_retry()
                return
        if self._fail_over():
            return
        self._fail(503)

    def response_head(self, status: int, headers: Headers, keep: bool) -> bool:
        run = self.run
        if run is not None and status >= 200 and run.retry_on(status):
            self._drop_upstream()
            run.schedule_retry()
            return False
        if status < 200:
            self.interim = True  # 1xx: not forwarded (HTTP/2 clients need no 100-continue)
            return False
        target = self.target
        edits = () if target is None else target.response_edits
        fields, framed = h2base.response_fields(status, headers, edits)
        no_body = not msg.response_has_body(status, self.head_request)
        self.upstream_framed = framed or no_body
        self.upstream_keep = keep
        self.response_started = True
        self.response = fields
        return self.head_request

    def response_body(self, data: bytes) -> None:
        if self.response_done or not data:
            return
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            if self.upstream is not None:
                self.upstream.pause_reading(True)

    def response_trailers(self, fields: Headers) -> None:
        """Trailers of an HTTP/2 upstream response (gRPC status), sent after the body."""
        self.trailers = [(n, v) for n, v in fields if n[:1] != b":"]

    def response_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.upstream_done = True
        if self.run is not None:
            self.run.cancel()
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.release(self.upstream_keep and self.request_done and self.upstream_framed)
        self.pump()

    def upstream_flush(self) -> None:
        self.pump()

    def upstream_lost(self, conn: UpstreamConnection, exc: BaseException | None) -> None:
        self.upstream = None
        if self.response_done or self.upstream_done:
            return
        if self.response_started:
            if not self.upstream_framed and exc is None:
                self.response_complete()  # a close-delimited body ends with the connection
            else:
                self._cut_short(503, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return
        run = self.run
        if run is not None and run.can_retry():
            run.schedule_retry()
            return
        if (
            conn.requests > 1
            and not self.has_body
            and not self.retried
            and self.pool is not None
            and not isinstance(exc, UpstreamProtocolError)
            and not _is_parse_error(exc)
        ):
            self.retried = True  # a reused keep-alive connection raced with its close
            self.out = [self.head]
            self.pool.acquire(self, fresh=True)
            return
        malformed = isinstance(exc, UpstreamProtocolError) or _is_parse_error(exc)
        self._fail(502 if malformed else 503)

    def upstream_paused(self, paused: bool) -> None:
        """The upstream transport's write buffer passed the high-water mark, or drained."""
        self.upstream_full = paused
        if not paused:
            self.flush_upstream()  # acknowledges what was held back
            self.client.flush()

    def _fail(self, status: int) -> None:
        """The upstream failed before a response head: answer ``status`` ourselves."""
        if self.response_done or self.response_started:
            return
        if self.run is not None:
            self.run.cancel()
        self._drop_upstream()
        self.out.clear()
        self.out_size = 0
        self.client.ack(self.unacked, self.stream_id)
        self.unacked = 0
        self.pool = None  # the rest of the request body is read and dropped
        self.local_status(status)
        local = self._local
        assert local is not None
        self.respond_locally(local[1], local[2])
        self.client.flush()

    # --- response direction: send within the client's windows -------------------------------

    def pump(self) -> None:
        """Send what the client's flow-control windows allow; end the stream when all is sent."""
        if self.response_done:
            return
        client = self.client
        h2conn = client.h2
        sid = self.stream_id
        fields = self.response
        if fields is not None:
            self.response = None
            self.headers_sent = True
            end = self.upstream_done and not self.pending and self.trailers is None
            h2conn.send_headers(sid, fields, end_stream=end)
            if end:
                self._response_sent()
                client.flush()
                return
        if not self.headers_sent:
            return
        pending = self.pending
        while pending and not client.write_paused:
            window = min(h2conn.local_flow_control_window(sid), h2conn.max_outbound_frame_size)
            if window <= 0:
                break  # WindowUpdated pumps again
            chunk = pending[0]
            if len(chunk) > window:
                pending[0] = chunk[window:]
                chunk = chunk[:window]
            else:
                pending.popleft()
            self.pending_size -= len(chunk)
            end = not pending and self.upstream_done and self.trailers is None
            h2conn.send_data(sid, chunk, end_stream=end)
            if end:
                self._response_sent()
                client.flush()
                return
        if self.reading_paused and self.pending_size < LOW_WATER:
            self.reading_paused = False
            if self.upstream is not None:
                self.upstream.pause_reading(False)
        if not pending and self.upstream_done:
            if self.trailers is not None:
                h2conn.send_headers(sid, self.trailers, end_stream=True)
            else:
                h2conn.end_stream(sid)
            self._response_sent()
        client.flush()

    # --- timeouts and retries (see turnout.dataplane.policy) -------------------------------

    def request_timed_out(self) -> None:
        """timeouts.request passed: 504, or a reset stream if the response had started."""
        if self.response_done:
            return
        if self.response_started:
            self._cut_short(504, h2.errors.ErrorCodes.CANCEL)
            return
        self._fail(504)

    def _cut_response_short(self) -> None:
        self._cut_short(504, h2.errors.ErrorCodes.CANCEL)


def _is_parse_error(exc: BaseException | None) -> bool:
    import httptools

    return isinstance(exc, httptools.HttpParserError)
