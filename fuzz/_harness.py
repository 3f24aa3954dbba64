"""Shared pieces of the fuzz targets: fake transports, an upstream stub, strict checks.

The targets drive the real protocol objects (no sockets) inside one long-lived event
loop, since pools and the watchdog need a running loop. Anything a target considers a
bug raises, which atheris reports as a crash with the input saved.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httptools

from turnout import ir
from turnout.dataplane import h2stream, http1
from turnout.dataplane.http1 import ClientConnection, SocketState
from turnout.dataplane.router import compile_routes
from turnout.dataplane.upstream import (
    EndpointPool,
    UpstreamCluster,
    UpstreamConnection,
    UpstreamProtocolError,
    UpstreamUser,
)


class BugLogged(AssertionError):
    """http1 caught an exception in a callback and logged it: a bug, not bad input."""


class _RaiseOnError(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            raise BugLogged(record.getMessage())


# Exceptions an upstream connection may legitimately be lost with; anything else that
# reaches Exchange.upstream_lost came from a bug in a parser callback.
_EXPECTED_LOSS = (httptools.HttpParserError, UpstreamProtocolError, ConnectionError)
_upstream_lost = http1.Exchange.upstream_lost
_h2_upstream_lost = h2stream.H2Stream.upstream_lost


def _check_loss(exc: BaseException | None) -> None:
    if exc is not None and not isinstance(exc, _EXPECTED_LOSS):
        raise AssertionError(f"upstream callback bug: {exc!r}") from exc


def _checked_upstream_lost(
    self: http1.Exchange, conn: UpstreamConnection, exc: BaseException | None
) -> None:
    _check_loss(exc)
    _upstream_lost(self, conn, exc)


def _checked_h2_upstream_lost(
    self: h2stream.H2Stream, conn: UpstreamConnection, exc: BaseException | None
) -> None:
    _check_loss(exc)
    _h2_upstream_lost(self, conn, exc)


def install_checks() -> Callable[[], None]:
    """Make caught callback bugs crash the target; returns what undoes it (for pytest).

    (Compiled classes call their own methods directly, so the upstream_lost wrappers only
    take effect where the data plane runs from source: under atheris, see _fuzzing.)
    """
    logger = logging.getLogger("turnout")
    handler = _RaiseOnError()
    logger.addHandler(handler)
    http1.Exchange.upstream_lost = _checked_upstream_lost  # type: ignore[method-assign]
    h2stream.H2Stream.upstream_lost = _checked_h2_upstream_lost  # type: ignore[method-assign]

    def undo() -> None:
        logger.removeHandler(handler)
        http1.Exchange.upstream_lost = _upstream_lost  # type: ignore[method-assign]
        h2stream.H2Stream.upstream_lost = _h2_upstream_lost  # type: ignore[method-assign]

    return undo


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        if self.closed:
            raise AssertionError("write after close")
        self.written.append(bytes(data))

    def take(self) -> bytes:
        out = b"".join(self.written)
        self.written.clear()
        return out

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        # http1 hands a connection that opens with the HTTP/2 preface to http2.
        self.protocol: asyncio.BaseProtocol | None = protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("10.1.2.3", 5555) if name == "peername" else default


class Upstreams:
    """A connector that 'connects' at once to a fake transport."""

    def __init__(self) -> None:
        self.connections: list[tuple[UpstreamConnection, FakeTransport]] = []

    def __call__(self, pool: EndpointPool, user: UpstreamUser) -> None:
        conn = UpstreamConnection(pool)
        transport = FakeTransport()
        conn.connection_made(transport)
        self.connections.append((conn, transport))
        conn.bind(user)


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _OneRequest:
    """Counts complete requests in what the proxy wrote to one upstream connection."""

    def __init__(self, data: bytes) -> None:
        self.complete = 0
        self.heads = 0
        method, space, rest = data.partition(b" ")
        if space and _TOKEN.fullmatch(method) and method not in _LLHTTP_METHODS:
            # HTTP/2 forwards any token as a method (RFC 9110 9.1), llhttp knows a list:
            # parse the framing with one it knows and frames the same way.
            data = b"POST " + rest
        parser = httptools.HttpRequestParser(self)
        parser.feed_data(data)  # raises: the proxy framed a request badly
        self.method = method if self.heads else b""

    def on_headers_complete(self) -> None:
        self.heads += 1

    def on_message_complete(self) -> None:
        self.complete += 1


# Methods llhttp parses (its own list); HEAD and CONNECT are framed differently.
_LLHTTP_METHODS = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND "
    b"PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE "
    b"M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE "
    b"QUERY".split()
)

_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
_HEAD_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


def answer_upstreams(upstreams: Upstreams, answered: set[int]) -> None:
    """Answer each upstream connection whose request is complete (once): a crash if what
    the proxy wrote is not exactly one well-framed HTTP/1.1 request."""
    for i, (conn, upstream) in enumerate(upstreams.connections):
        sent = b"".join(upstream.written)
        if i in answered or upstream.closed or not sent:
            continue
        seen = _OneRequest(sent)
        if seen.heads > 1:
            raise AssertionError("two requests written on one upstream exchange")
        if seen.complete == 1:
            answered.add(i)
            # HEAD gets no Content-Length: the response checker cannot tell
            # which request a response belongs to, so it could not skip a body.
            conn.data_received(_HEAD_ANSWER if seen.method == b"HEAD" else _ANSWER)


def cut_input(data: bytes) -> tuple[int, list[int], bytes]:
    """First byte: its low 3 bits say how many cut sizes follow (0-7), each one byte
    (a read of 1-256 bytes); the rest is the payload. Returns (first byte, sizes, payload)."""
    if not data:
        return 0, [], data
    count = data[0] & 7
    sizes = [b + 1 for b in data[1 : 1 + count]]
    return data[0], sizes, data[1 + count :]


def reads(sizes: list[int], payload: bytes) -> list[bytes]:
    """The payload cut into reads of the given sizes, the rest in one last read."""
    chunks = []
    start = 0
    for size in [*sizes, len(payload)]:
        chunk = payload[start : start + size]
        start += size
        if chunk:
            chunks.append(chunk)
    return chunks


def _rule(name: str, **fields: Any) -> ir.HTTPRouteRule:
    path = fields.pop("path", ir.PathMatch(type="PathPrefix", value="/"))
    return ir.HTTPRouteRule(
        name=name,
        match=ir.RouteMatch(path=path),
        filters=fields.pop("filters", ir.Filters()),
        **fields,
    )


ROUTES = (
    _rule("teapot", path=ir.PathMatch(type="Exact", value="/teapot"), direct_status=418),
    _rule(
        "redirect",
        path=ir.PathMatch(type="PathPrefix", value="/old"),
        filters=ir.Filters(redirect=ir.RequestRedirect(status_code=301)),
    ),
    _rule(
        "edited",
        path=ir.PathMatch(type="PathPrefix", value="/edit"),
        backends=(ir.WeightedBackend(weight=1, cluster="c"),),
        filters=ir.Filters(
            request_headers=ir.HeaderModifier(set=(("x-a", "1"),), remove=("x-b",)),
            response_headers=ir.HeaderModifier(add=(("x-c", "2"),)),
            rewrite=ir.URLRewrite(
                hostname="b.example",
                path=ir.PathModifier(type="ReplacePrefixMatch", value="/e", prefix="/edit"),
            ),
        ),
    ),
    _rule("proxy", backends=(ir.WeightedBackend(weight=1, cluster="c"),)),
)


def socket_state(upstreams: Upstreams) -> SocketState:
    pool = EndpointPool("10.0.0.9", 80, connector=upstreams)
    vhost = ir.VirtualHost(hostname="*", routes=ROUTES)
    listener = ir.Listener(
        name="default/gw/http",
        address="127.0.0.1",
        port=8080,
        spec_port=8080,
        protocol="HTTP",
        hostname=None,
        virtual_hosts=(vhost,),
    )
    config = ir.Config(
        version=1,
        gateways=(ir.Gateway(name="default/gw", address="127.0.0.1", listeners=(listener,)),),
        clusters={"c": ir.Cluster(name="c", endpoints=(ir.Endpoint(address="10.0.0.9", port=80),))},
    )
    table = compile_routes(config, {"c": UpstreamCluster("c", (pool,))})
    return SocketState(next(iter(table.sockets.values())))


def new_client(upstreams: Upstreams) -> tuple[ClientConnection, FakeTransport]:
    client = ClientConnection(socket_state(upstreams))
    transport = FakeTransport()
    client.connection_made(transport)
    return client, transport


class Responses:
    """Parses the proxy's output to the client; raises on anything malformed."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.connection_close: list[bool] = []
        self.bodies: list[bytes] = []
        self._parser = httptools.HttpResponseParser(self)
        self._close = False
        self._body = b""

    def feed(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"connection" and value.lower() == b"close":
            self._close = True

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.statuses.append(self._parser.get_status_code())
        self.connection_close.append(self._close)
        self.bodies.append(self._body)
        self._close = False
        self._body = b""


def check_client_output(
    data: bytes, transport: FakeTransport, *, local_answers: bool = True
) -> Responses:
    """Well-formed responses. With ``local_answers`` (no backend status passes through):
    no 500 (a caught bug), and every error answer says close and does close."""
    responses = Responses()
    if data:
        responses.feed(data)
    if not local_answers:
        return responses
    for status, close in zip(responses.statuses, responses.connection_close, strict=True):
        if status == 500:
            raise AssertionError("500: http1 caught an exception in a callback")
        if status in (400, 408, 414, 431, 505) and not (close and transport.closed):
            raise AssertionError(f"{status} without connection: close and a close")
    return responses


_loop: asyncio.AbstractEventLoop | None = None


def run(coro: Callable[[], Awaitable[None]]) -> None:
    """Run one input on the shared loop (pools and the watchdog want a running loop)."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    _loop.run_until_complete(coro())


def close_loop() -> None:
    global _loop
    if _loop is not None:
        _loop.run_until_complete(_loop.shutdown_asyncgens())
        _loop.close()
        _loop = None
