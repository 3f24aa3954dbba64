"""mirror: fire-and-forget copies of proxied requests (the RequestMirror filter).

Place in the pipeline: :mod:`turnout.dataplane.router` compiles a rule's RequestMirror
filters into :class:`turnout.dataplane.router.Mirror` entries; when
:mod:`turnout.dataplane.http1` forwards a request it starts one :class:`MirrorExchange` per
mirror that fires, hands it the request head, and then -- for a request with a body --
every piece of the body, framed exactly as it is sent to the primary backend.

A mirror must never delay, block or fail the real request (HTTPRequestMirrorFilter:
"responses from the mirrored backend are ignored"). So a mirror never pushes back on the
client: it has no say in when the client is read. Instead it bounds what it holds --
bytes waiting for its connection plus bytes queued in its transport -- by
:data:`MIRROR_BUFFER`; past that, or when it has not finished within
:data:`MIRROR_TIMEOUT`, it gives up: its upstream connection is closed (a half-sent
request cannot go back to the pool) and the rest of the body is not copied. Its
response is read and dropped; the connection goes back to the pool when the exchange
ended cleanly.
"""

from __future__ import annotations

import asyncio

from turnout.dataplane.upstream import HIGH_WATER, EndpointPool, UpstreamConnection, UpstreamUser

# Request bytes one mirror may hold (waiting for a connection or in its write buffer).
MIRROR_BUFFER = 4 * HIGH_WATER
# A mirrored exchange not finished by then is abandoned (its backend is stalled).
MIRROR_TIMEOUT = 30.0


class MirrorExchange(UpstreamUser):
    """One copy of a request on its way to a mirror backend; the response is dropped."""

    __slots__ = (
        "complete",
        "conn",
        "done",
        "head_request",
        "interim",
        "keep",
        "pending",
        "pending_size",
        "timer",
    )

    def __init__(self, head: bytes, *, complete: bool, head_request: bool) -> None:
        self.conn: UpstreamConnection | None = None
        self.pending: list[bytes] = [head]  # request bytes until a connection is attached
        self.pending_size = len(head)
        self.complete = complete  # the whole request has been handed over
        self.done = False  # finished or given up: nothing more is sent
        self.head_request = head_request
        self.interim = False
        self.keep = False
        self.timer: asyncio.TimerHandle | None = None

    def start(self, pool: EndpointPool) -> None:
        self.timer = asyncio.get_running_loop().call_later(MIRROR_TIMEOUT, self.drop)
        pool.acquire(self)

    # --- fed by the primary exchange -----------------------------------------------------

    def send(self, data: bytes) -> None:
        """More of the request (body bytes, already framed as for the primary)."""
        if self.done:
            return
        conn = self.conn
        if conn is None:
            self.pending.append(data)
            self.pending_size += len(data)
            if self.pending_size > MIRROR_BUFFER:
                self.drop()
            return
        conn.write(data)
        self._check_buffer(conn)

    def finish(self) -> None:
        """The primary's request has been read completely."""
        self.complete = True

    def drop(self) -> None:
        """Give up on this copy: close its connection, send nothing more."""
        self._end()
        self.pending = []
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.close()

    def _end(self) -> None:
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check_buffer(self, conn: UpstreamConnection) -> None:
        transport = conn.transport
        if transport is not None and transport.get_write_buffer_size() > MIRROR_BUFFER:
            self.drop()  # the mirror backend does not keep up: never slow the client

    # --- UpstreamUser --------------------------------------------------------------------

    def attached(self, conn: UpstreamConnection) -> None:
        if self.done:
            conn.release(True)  # given up meanwhile; nothing was written to it
            return
        self.conn = conn
        pending = self.pending
        self.pending = []
        self.pending_size = 0
        conn.write(b"".join(pending))
        self._check_buffer(conn)

    def connect_failed(self, exc: BaseException) -> None:
        self._end()
        self.pending = []

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep: bool) -> bool:
        if status < 200:
            self.interim = True  # 100 Continue and friends: the final head follows
            return False
        self.keep = keep
        return self.head_request

    def response_body(self, data: bytes) -> None:
        pass

    def response_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        conn = self.conn
        self.conn = None
        # An answer before the whole body was sent leaves the request half-written.
        reusable = self.keep and self.complete and not self.done
        self._end()
        if conn is not None:
            conn.release(reusable)

    def upstream_flush(self) -> None:
        pass

    def upstream_lost(self, conn: UpstreamConnection, exc: BaseException | None) -> None:
        self.conn = None
        self._end()

    def upstream_paused(self, paused: bool) -> None:
        pass  # never pause the client for a mirror; send() bounds the buffer instead


# --- used by the client-side exchanges (exchange.Exchange, h2stream.H2Stream) ------------------


def feed_mirrors(mirrors: list[MirrorExchange], data: bytes) -> None:
    """More of the request body, framed as for the primary upstream."""
    for mirror in mirrors:
        mirror.send(data)


def finish_mirrors(mirrors: list[MirrorExchange], last: bytes) -> None:
    """The request was read completely; ``last`` ends a chunked body (else empty)."""
    for mirror in mirrors:
        if last:
            mirror.send(last)
        mirror.finish()


def drop_mirrors(mirrors: list[MirrorExchange]) -> None:
    """The request will not be read completely: give up every copy."""
    for mirror in mirrors:
        mirror.drop()
