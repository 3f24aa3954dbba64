"""http2: the client side of HTTP/2 -- the connection: framing, settings, flow control, hand-over.

Place in the pipeline: a connection starts as an HTTP/1.1
:class:`turnout.dataplane.http1.ClientConnection`, which hands its transport over to
:func:`take_over` when the client speaks HTTP/2: TLS with ALPN ``h2``
(:mod:`turnout.dataplane.tls`), the connection preface on a plaintext socket ("prior
knowledge"), or ``Upgrade: h2c`` (RFC 7540 3.2). An :class:`H2ClientConnection` then owns
the transport and turns h2 events into calls on one
:class:`~turnout.dataplane.h2stream.H2Stream` per stream, which is routed by
:func:`turnout.dataplane.dispatch.route_request` with the same tables, filters, timeouts
and retries as an HTTP/1.1 request, and forwarded over the same upstream pools.

Theory of operation
-------------------
* **Sans-IO core.** The ``h2`` library turns bytes into events and produces the bytes to
  send; this module only reacts to events and writes ``data_to_send()`` once per batch
  (at the end of ``data_received``, or of an upstream callback).
* **Streams speak HTTP/1.1 upstream.** An :class:`~turnout.dataplane.h2stream.H2Stream`
  offers the surface of an :class:`~turnout.dataplane.exchange.Exchange` that
  ``route_request`` and the upstream pools use: it is given an HTTP/1.1 request head and
  writes request bytes (chunked when the client sent no content-length) to an upstream
  connection, and receives response events from it. h2c clusters use
  :mod:`turnout.dataplane.upstream_h2`, whose streams present the same connection
  interface and translate back to HTTP/2 there.
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
  gateway answers itself gets a trailers-only gRPC response
  (:func:`~turnout.dataplane.h2stream.grpc_status`), so GRPCRoute rules, compiled into
  the same tables, get it too.
* **Failures.** No exception leaves a callback. A protocol error from the client ends the
  connection with GOAWAY; an upstream failing after the response started resets only its
  stream (INTERNAL_ERROR).

This module holds the connection and the hand-over from HTTP/1.1 (``take_over``, the
h2c ``Upgrade``); :mod:`turnout.dataplane.h2stream` holds the per-stream exchange.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import TYPE_CHECKING, cast

import h2.config
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionState

from turnout.dataplane import h2base
from turnout.dataplane import messages as msg
from turnout.dataplane import watchdog as wd
from turnout.dataplane.h2base import Headers
from turnout.dataplane.h2stream import H2Stream
from turnout.dataplane.upstream import HIGH_WATER, LOW_WATER

if TYPE_CHECKING:
    from turnout.dataplane.http1 import ClientConnection

log = logging.getLogger(__name__)


_CONFIG = h2.config.H2Configuration(client_side=False, header_encoding=None)


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
        if self.h2.state_machine.state is ConnectionState.CLOSED:
            # The read ended with the client's GOAWAY with an error code, on which h2 closes
            # (see h2base): it abandons the connection, and h2 can send nothing more, so the
            # requests read before it cannot be answered (found by fuzz/http2_front.py).
            self.feeding = False
            self.abort()
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
        if self.stream_gone(stream_id):
            return  # reset by the client in this same read: its StreamReset event follows
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

    def stream_gone(self, stream_id: int) -> bool:
        """h2 closed the stream before we answered it: the client reset it, possibly later
        in the read being handled (h2 parses a whole read before its events are handled),
        and h2 refuses to send on it (found by fuzz/http2_front.py)."""
        stream = self.h2.streams.get(stream_id)
        return stream is None or stream.closed

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
            # Also in the middle of a read (a client's GOAWAY after its last request, in
            # the same read): what h2 queued, such as that request's answer, goes out.
            self.feeding = False
            self.flush()
            self.open = False
            self.transport.close()  # type: ignore[union-attr]

    def abort(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.abort()


# Fields of an HTTP/1.1 Upgrade request that do not become HTTP/2 fields.
_UPGRADE_DROP = msg.HOP_BY_HOP | {b"http2-settings", b"host"}
