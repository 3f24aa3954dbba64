"""h2stream: one request/response exchange on an HTTP/2 client connection.

Place in the pipeline: :class:`turnout.dataplane.http2.H2ClientConnection` creates an
:class:`H2Stream` per stream the client opens and feeds it the stream's h2 events
(headers, DATA, trailers, resets, window updates); ``dispatch.route_request`` decides what
it does (a local answer, or forwarding through an endpoint pool of
:mod:`turnout.dataplane.upstream` or :mod:`turnout.dataplane.upstream_h2`); as an
``UpstreamUser`` it then writes the request upstream as HTTP/1.1 bytes and sends the
response back to the client as HTTP/2 frames, within the client's flow-control windows
(see the theory of operation in :mod:`turnout.dataplane.http2`). Local answers to gRPC
calls are trailers-only gRPC responses (:func:`grpc_status`).
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from typing import TYPE_CHECKING

import h2.errors
import h2.exceptions

from turnout.dataplane import h2base
from turnout.dataplane import messages as msg
from turnout.dataplane.dispatch import route_request
from turnout.dataplane.forwarding import Forwarding
from turnout.dataplane.h2base import Headers
from turnout.dataplane.limits import Limits
from turnout.dataplane.stats import BAD_REQUEST, STATS, UPSTREAM_TIMEOUT
from turnout.dataplane.upstream import (
    HIGH_WATER,
    LOW_WATER,
    UpstreamConnection,
)

if TYPE_CHECKING:
    from turnout.dataplane.http2 import H2ClientConnection

_GRPC = b"application/grpc"

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


# Fields of a local HTTP/1.1 answer that HTTP/2 does not carry.
_LOCAL_DROP = msg.HOP_BY_HOP

# What h2 lets through but an HTTP/1.1 request line or field must not carry (h2 itself
# refuses NUL, CR, LF, upper-case, controls and non-ASCII in names). Forwarded as
# received, a space in :path or :method would split the request line upstream
# ("GET /a b HTTP/1.1"). :method and field names are tokens (RFC 9110 9.1, 5.1, 5.6.2:
# no "=", "(", "," ...); :path is the absolute-path and query productions of RFC 3986,
# visible ASCII only (RFC 9113 8.3.1); field values hold no control character but HTAB
# (RFC 9110 5.5). The HTTP/1.1 front refuses the same (llhttp).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_IN_PATH = re.compile(rb"[^\x21-\x7e]")
_CTL_IN_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def valid_request_line(method: bytes, path: bytes) -> bool:
    """Whether :method and :path can make an HTTP/1.1 request line (see _TOKEN)."""
    if path[:1] != b"/" or path.find(b"#") != -1 or _NOT_IN_PATH.search(path) is not None:
        return False
    return _TOKEN.fullmatch(method) is not None


def valid_fields(fields: Headers) -> bool:
    """Token names, and no control characters (but HTAB) in any value (see _TOKEN)."""
    for name, value in fields:
        if _TOKEN.fullmatch(name) is None or _CTL_IN_VALUE.search(value) is not None:
            return False
    return True


class H2Stream(Forwarding):
    """One request/response exchange on an HTTP/2 connection.

    It offers what :func:`turnout.dataplane.dispatch.route_request` sets up on an exchange
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
        "status",
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
        # keep_alive: route_request may clear it; meaningless for HTTP/2. upgrade (an
        # HTTP/1.1 Upgrade, WebSocket) stays None: never over HTTP/2.
        super().__init__(True)
        self.client = client
        self.stream_id = stream_id
        self.grpc = False
        self._local: tuple[int, Headers, bytes] | None = None  # a local answer instead
        # request direction
        self.unacked = 0  # flow-controlled bytes received but not yet acknowledged
        self.upstream_full = False
        # response direction
        self.response: Headers | None = None  # fields not yet sent
        self.headers_sent = False
        self.upstream_done = False  # the upstream response is complete
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
        if request.invalid or not valid_request_line(method, path) or not valid_fields(raw):
            self.local_status(400, BAD_REQUEST)
        else:
            # Routed within what the HTTP/1.1 connection it started as knew (TLS: its SNI).
            route_request(self, method, path, request, self.client.origin)
        self.request_done = end_stream  # HEADERS with END_STREAM: no body follows
        self.start()

    def local_answer(self, response: bytes, reason: int) -> None:
        STATS.answered_locally(reason)
        self._parse_local(response)

    def _parse_local(self, response: bytes) -> None:
        """route_request writes local answers as HTTP/1.1 bytes (messages.py): parse them."""
        head, _, body = response.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        fields: Headers = [(b":status", lines[0][9:12])]
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname not in _LOCAL_DROP:
                fields.append((lname, value.strip()))
        self.status = int(lines[0][9:12])
        self._local = (self.status, fields, body)

    def connection_header(self) -> bytes:
        return msg.CONN_KEEP

    def local_status(self, status: int, reason: int) -> None:
        STATS.answered_locally(reason)
        if self.grpc:
            code, message = grpc_status(status)
            fields: Headers = [
                (b":status", b"200"),
                (b"content-type", b"application/grpc"),
                (b"grpc-status", b"%d" % code),
                (b"grpc-message", message),
            ]
            self.status = 200  # what the client gets; grpc-status carries the error
            self._local = (status, fields, b"")
        else:
            self._parse_local(msg.local_response(status, msg.CONN_KEEP))

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
        self.count_response()
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
        if not valid_fields(fields):
            # A malformed request (RFC 9113 8.1.1) whose head is already upstream: end it.
            self._reset(h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
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
        self.status = status
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
        self._release_upstream()
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
        self._lost_before_response(conn, exc)

    def upstream_paused(self, paused: bool) -> None:
        """The upstream transport's write buffer passed the high-water mark, or drained."""
        self.upstream_full = paused
        if not paused:
            self.flush_upstream()  # acknowledges what was held back
            self.client.flush()

    def _fail(self, status: int, reason: int) -> None:
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
        self.local_status(status, reason)
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
        if client.stream_gone(sid):
            return  # the client reset it in the read being handled: its StreamReset follows
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
        self._fail(504, UPSTREAM_TIMEOUT)

    def _cut_response_short(self) -> None:
        self._cut_short(504, h2.errors.ErrorCodes.CANCEL)
