"""The admin HTTP/1.1 server: asyncio transport + httptools parser.

Theory of operation: one `AdminConnection` per TCP connection. Bytes go into the
httptools parser; when a request is complete it is answered at once (every answer is
computed synchronously from the provider), so pipelined requests are answered in order
without queueing. Keep-alive follows HTTP/1.1 rules (`Connection: close`, HTTP/1.0).
An idle timer closes a connection on which nothing arrived for a while. A parse error or an oversized
head is answered with 400/431 and the connection is closed. If the peer stops reading,
reading is paused until the write buffer drains.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import httptools
import prometheus_client

if TYPE_CHECKING:
    from turnout.admin import AdminProvider

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may stay idle
MAX_HEAD_BYTES = 64 * 1024  # request line + headers

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}
_STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason) for code, reason in _REASONS.items()}
_TEXT = b"text/plain; charset=utf-8"
_JSON = b"application/json"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = _TEXT
    allow: bytes | None = None


def _text(status: int, text: str) -> Response:
    return Response(status, text.encode() + b"\n")


class _StatusRenderer:
    """``/status`` as compact JSON, rendered once per version of the provider's answer.

    At thousands of routes the document is megabytes, and rendering it costs far more
    than anything else the admin API does; a client polling ``/status`` must not make
    the event loop (which also serves traffic) re-render it on every request. The
    provider returns the same list objects until a reload replaces them (see
    ``AdminProvider.status_items``), so the lists' identity is the version. The last
    lists are held here, so an identity match can never be a recycled id.
    """

    def __init__(self) -> None:
        self._items: object = None
        self._errors: object = None
        self._body = b""

    def __call__(self, provider: AdminProvider) -> Response:
        items, errors = provider.status_items(), provider.load_errors()
        if items is not self._items or errors is not self._errors:
            document = {"items": items, "errors": errors}
            self._body = json.dumps(document, separators=(",", ":")).encode() + b"\n"
            self._items, self._errors = items, errors
        return Response(200, self._body, _JSON)


_status = _StatusRenderer()


def _metrics(_: AdminProvider) -> Response:
    return Response(
        200, prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST.encode()
    )


_ROUTES: dict[str, Callable[[AdminProvider], Response]] = {
    "/healthz": lambda p: _text(200, "ok") if p.healthy() else _text(503, "unhealthy"),
    "/readyz": lambda p: _text(200, "ready") if p.ready() else _text(503, "not ready"),
    "/status": _status,
    "/config": lambda p: Response(200, p.config_json(), _JSON),
    "/metrics": _metrics,
}


def answer(provider: AdminProvider, method: str, path: str) -> Response:
    """The response to one request; never raises."""
    handler = _ROUTES.get(path)
    if handler is None:
        return _text(404, f"not found: {path}; try {', '.join(sorted(_ROUTES))}")
    # HEAD is answered like GET, without the body (RFC 9110 section 9.3.2).
    if method not in ("GET", "HEAD"):
        return Response(405, b"method not allowed\n", allow=b"GET, HEAD")
    try:
        return handler(provider)
    except Exception:
        log.exception("admin API: %s failed", path)
        return _text(500, "internal error; see the gateway's log")


def encode_response(response: Response, *, keep_alive: bool, head: bool) -> bytes:
    headers = [
        _STATUS_LINES[response.status],
        b"content-type: ",
        response.content_type,
        b"\r\ncontent-length: %d\r\n" % len(response.body),
    ]
    if response.allow is not None:
        headers += [b"allow: ", response.allow, b"\r\n"]
    if not keep_alive:
        headers.append(b"connection: close\r\n")
    headers.append(b"\r\n")
    if not head:
        headers.append(response.body)
    return b"".join(headers)


class AdminConnection(asyncio.Protocol):
    def __init__(self, provider: AdminProvider, idle_timeout: float) -> None:
        # per connection
        self._provider = provider
        self._idle_timeout = idle_timeout
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing = False
        # per request
        self._url = bytearray()
        self._head_bytes = 0

    # --- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_idle_timer()
        self._transport = None
        self._closing = True

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._cancel_idle_timer()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()  # no protocol upgrades here
        except httptools.HttpParserError:
            self._reply_and_close(_text(400, "bad request"))
        else:
            if not self._closing:
                self._arm_idle_timer()

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closing:
            self._transport.resume_reading()

    # --- httptools callbacks -------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url.clear()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)

    def on_message_complete(self) -> None:
        if self._closing:
            return
        method = self._parser.get_method().decode("ascii", "replace")
        keep_alive = bool(self._parser.should_keep_alive())
        self._head_bytes = 0
        try:
            path = httptools.parse_url(bytes(self._url)).path.decode("utf-8", "replace")
        except httptools.HttpParserInvalidURLError:
            self._reply_and_close(_text(400, "bad request target"))
            return
        response = answer(self._provider, method, path)
        self._write(encode_response(response, keep_alive=keep_alive, head=method == "HEAD"))
        if not keep_alive:
            self._close()

    # --- helpers -------------------------------------------------------------------

    def _count_head(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > MAX_HEAD_BYTES and not self._closing:
            self._reply_and_close(_text(431, "request head too large"))
            # Stop the parser: nothing more from this connection is read.
            raise httptools.HttpParserError("request head too large")

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def _reply_and_close(self, response: Response) -> None:
        if not self._closing:
            self._write(encode_response(response, keep_alive=False, head=False))
            self._close()

    def _close(self) -> None:
        self._closing = True
        self._cancel_idle_timer()
        if self._transport is not None:
            self._transport.close()  # flushes what was written first

    def _arm_idle_timer(self) -> None:
        self._cancel_idle_timer()
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(self._idle_timeout, self._close)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None


async def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass  # a name: every address it resolves to must be loopback
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


async def start_admin(
    host: str,
    port: int,
    provider: AdminProvider,
    *,
    allow_remote: bool = False,
    idle_timeout: float = IDLE_TIMEOUT,
) -> asyncio.AbstractServer:
    """Start serving the admin API on host:port (port 0 picks a free port).

    The admin API has no authentication, so it refuses a non-loopback address unless
    `allow_remote` is set.
    """
    if not allow_remote and not await _is_loopback(host):
        raise ValueError(
            f"refusing to serve the admin API on {host!r}: not a loopback address "
            "(it has no authentication; pass allow_remote=True to override)"
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: AdminConnection(provider, idle_timeout), host, port, reuse_address=True
    )
    log.info("admin API listening on %s", ", ".join(_sockname(s) for s in server.sockets))
    return server


def _sockname(sock: socket.socket) -> str:
    address = sock.getsockname()
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
