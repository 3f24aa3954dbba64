"""exchange: one request and its response on an HTTP/1.1 client connection.

Place in the pipeline: :class:`turnout.dataplane.http1.ClientConnection` creates an
:class:`Exchange` per parsed request head and queues it; ``dispatch.route_request``
decides what it does (a local answer, or forwarding through an endpoint pool of
:mod:`turnout.dataplane.upstream`); as an ``UpstreamUser`` it then carries the request
body upstream and the response back (see the theory of operation in
:mod:`turnout.dataplane.http1`). The response head is rebuilt by
:class:`turnout.dataplane.messages.ResponseHead`, or passed on as received when nothing
in it changes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

import httptools

from turnout.dataplane import messages as msg
from turnout.dataplane.forwarding import Forwarding
from turnout.dataplane.limits import Limits
from turnout.dataplane.mirror import drop_mirrors, feed_mirrors, finish_mirrors
from turnout.dataplane.stats import BAD_RESPONSE, STATS, UPSTREAM_RESET, UPSTREAM_TIMEOUT
from turnout.dataplane.upstream import (
    HIGH_WATER,
    UpstreamConnection,
    UpstreamProtocolError,
)

if TYPE_CHECKING:
    from turnout.dataplane.http1 import ClientConnection

# Reasons for not reading from the client (bits of ClientConnection._paused).
PAUSE_UPSTREAM_FULL: Final = 1  # the upstream transport's write buffer is full
PAUSE_BUFFERED: Final = 2  # too much request data waits for an upstream connection
PAUSE_PIPELINE: Final = 4  # too many pipelined requests queued
PAUSE_DONE: Final = 8  # no more requests will be read on this connection


class Exchange(Forwarding):
    """One request and its response on a client connection (see the module docstring)."""

    __slots__ = (
        "body_mode",
        "chunked",
        "client",
        "client_out",
        "failed_over",
        "has_body",
        "head",
        "head_request",
        "http10",
        "interim",
        "keep_alive",
        "local",
        "mirrors",
        "out",
        "out_size",
        "pool",
        "request_done",
        "response_done",
        "response_sent",
        "response_started",
        "retried",
        "run",
        "status",
        "switching",
        "target",
        "upgrade",
        "upstream",
        "upstream_framed",
        "upstream_keep",
        "verbatim",
    )

    def __init__(self, client: ClientConnection, *, keep_alive: bool, http10: bool) -> None:
        super().__init__(keep_alive)
        self.client = client
        self.http10 = http10
        self.local: bytes | None = None  # a local answer instead of forwarding
        # response direction
        self.response_sent = False  # some of the final response was written to the client
        self.body_mode = msg.BODY_NONE
        self.verbatim = False  # the response head is passed on as received
        self.client_out: list[bytes] = []
        self.switching = False  # the 101 answering an Upgrade was relayed

    # --- set up by route_request -------------------------------------------------------------

    def _limits(self) -> Limits:
        return self.client.limits

    def _restart_response(self) -> None:
        self.client_out.clear()

    def _cut_response_short(self) -> None:
        # HTTP/1.1 has no way to end a started response with an error: drop both sides.
        self.abort()
        self.client.abort()

    def connection_header(self) -> bytes:
        return msg.connection_header(self.keep_alive, self.http10)

    def local_status(self, status: int, reason: int) -> None:
        STATS.answered_locally(reason)
        self.status = status
        self.local = msg.local_response(status, self.connection_header())

    def local_answer(self, response: bytes, reason: int) -> None:
        STATS.answered_locally(reason)
        self.status = int(response[9:12])  # "HTTP/1.1 204 ..." (messages.py builds it)
        self.local = response

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Called when this exchange reaches the front of its connection's queue."""
        if self.local is not None:
            self.client.write(self.local)
            self.response_done = True
            if self.request_done:
                self.client.exchange_finished(self)
        elif self.pool is not None:
            if self.run is not None:
                self.run.started()
                self._acquire(self.pool)
            else:
                self.pool.acquire(self)

    def _finish(self) -> None:
        if self.mirrors is not None and not self.request_done:
            self._drop_mirrors()  # the rest of the body will not be read
        self.client.exchange_finished(self)

    def _drop_mirrors(self) -> None:
        mirrors = self.mirrors
        self.mirrors = None
        if mirrors is not None:
            drop_mirrors(mirrors)

    def abort(self) -> None:
        """The client went away: drop the upstream connection (its state is unknown)."""
        self.response_done = True
        if self.mirrors is not None:
            self._drop_mirrors()
        if self.run is not None:
            self.run.cancel()
        self._drop_upstream()

    # --- request direction -------------------------------------------------------------------

    def request_body(self, data: bytes) -> None:
        if self.pool is None:
            return  # answered locally: the body is read and dropped
        if self.chunked:
            data = b"%x\r\n" % len(data) + data + b"\r\n"
        mirrors = self.mirrors
        if mirrors is not None:
            feed_mirrors(mirrors, data)
        if not self.response_done:  # else failed already: the body is read and dropped
            self.send_upstream(data)

    def request_complete(self) -> None:
        self.request_done = True
        mirrors = self.mirrors
        if mirrors is not None:
            self.mirrors = None
            finish_mirrors(mirrors, msg.LAST_CHUNK if self.chunked else b"")
        if self.chunked and self.pool is not None and not self.response_done:
            self.send_upstream(msg.LAST_CHUNK)
        if self.response_done and self.client.exchanges and self.client.exchanges[0] is self:
            self._finish()

    def send_upstream(self, data: bytes) -> None:
        if self.run is not None:
            self.run.record(data)
        out = self.out
        if not out and self.client.feeding:
            self.client.mark_dirty(self)
        out.append(data)
        if self.upstream is None:
            self.out_size += len(data)
            if self.out_size > HIGH_WATER:
                self.client.set_paused(PAUSE_BUFFERED, True)
        elif not self.client.feeding:
            self.flush_upstream()

    def flush_upstream(self) -> None:
        upstream = self.upstream
        out = self.out
        if upstream is None or not out:
            return
        upstream.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        if self.out_size > HIGH_WATER:
            self.client.set_paused(PAUSE_BUFFERED, False)
        self.out_size = 0

    # --- UpstreamUser --------------------------------------------------------------------------

    def attached(self, conn: UpstreamConnection) -> None:
        if not self._take_connection(conn):
            return
        if self.client.write_paused:
            conn.pause_reading(True)
        if not self.client.feeding:
            self.flush_upstream()
        elif self.out:
            self.client.mark_dirty(self)

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep: bool) -> bool:
        run = self.run
        if run is not None and status >= 200 and run.retry_on(status):
            self._drop_upstream()  # its body is not wanted; closing beats draining it
            run.schedule_retry()
            return False
        target = self.target
        if status == 101 and self.upgrade is not None:
            # The backend accepts the upgrade: relay the 101; the tunnel starts when the
            # upstream parser stops at the end of this head (upstream_upgraded).
            edits = () if target is None else target.response_edits
            self.client_out.append(msg.switching_protocols_head(headers, self.upgrade, edits))
            self.switching = True
            self.response_started = True
            return False
        upstream = self.upstream
        head = msg.ResponseHead(
            status,
            headers,
            head_request=self.head_request,
            http10=self.http10,
            keep_alive=self.keep_alive,
            edits=() if target is None else target.response_edits,
            verbatim=upstream is not None and upstream.head_end > 0,
            names=None if upstream is None else upstream.names,
        )
        if head.invalid:
            raise UpstreamProtocolError("invalid framing (Transfer-Encoding, or a 1xx body)")
        if status < 200:
            self.interim = True
            if not self.http10 and status != 101:
                self.client_out.append(head.data)
            return False
        self.response_started = True
        self.status = status
        self.keep_alive = head.keep_alive
        self.body_mode = head.body_mode
        self.upstream_framed = head.upstream_framed
        self.upstream_keep = keep
        if head.verbatim and upstream is not None:
            self.verbatim = True  # see response_complete
            self.client_out.append(upstream.head_as_received())
        else:
            self.client_out.append(head.data)
        return self.head_request

    def response_body(self, data: bytes) -> None:
        if self.body_mode == msg.BODY_CHUNKED:
            self.client_out += msg.chunk(data)
        elif self.body_mode != msg.BODY_NONE:
            self.client_out.append(data)

    def response_complete(self) -> None:
        if self.interim or self.switching:
            self.interim = False
            return  # a 1xx: the final head follows; a 101: the tunnel, via upstream_upgraded
        if self.body_mode == msg.BODY_CHUNKED:
            self.client_out.append(msg.LAST_CHUNK)
        elif self.verbatim and self.upstream is not None:
            # Head and body unchanged and the read was exactly this response: write that
            # read as it is, rather than a join of the head and body copied out of it.
            whole = self.upstream.whole_message()
            if whole is not None:
                self.client_out.clear()
                self.client_out.append(whole)
        self.upstream_flush()
        self.response_done = True
        self._release_upstream()
        if not self.request_done:
            self.keep_alive = False  # the rest of the request body cannot be skipped safely
        self._finish()

    def upstream_upgraded(self, transport: asyncio.Transport, rest: bytes) -> bool:
        """The upstream switched protocols (after the 101 relayed by response_head): take
        its transport for a tunnel with the client; ``rest`` is what followed the 101."""
        if not self.switching or self.response_done:
            return False
        self.upstream_flush()  # the 101 head
        self.response_done = True
        self.status = 101
        self.count_response()  # the HTTP exchange ends here; the tunnel is not one
        self.upstream = None
        if self.run is not None:
            self.run.cancel()  # route timeouts end with the HTTP exchange (GEP-1742)
        self.client.start_tunnel(transport, rest)
        return True

    def upstream_flush(self) -> None:
        out = self.client_out
        if out:
            self.client.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            if self.response_started:
                self.response_sent = True

    def upstream_lost(self, conn: UpstreamConnection, exc: BaseException | None) -> None:
        self.upstream = None
        if self.response_done:
            return
        if self.response_started:
            if not self.upstream_framed and exc is None:
                self.response_complete()  # a close-delimited body ends with the connection
            elif not self.response_sent:
                # The head is still in client_out (it came in the same read as the broken
                # body): the client can get a clean 502 instead of a cut connection.
                self.client_out.clear()
                malformed = isinstance(exc, httptools.HttpParserError | UpstreamProtocolError)
                self._fail(502, BAD_RESPONSE if malformed else UPSTREAM_RESET)
            else:
                self.upstream_flush()
                self.client.abort()  # truncated: closing is the only signal left
            return
        self._lost_before_response(conn, exc)

    def upstream_paused(self, paused: bool) -> None:
        self.client.set_paused(PAUSE_UPSTREAM_FULL, paused)

    def client_paused(self, paused: bool) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading(paused)

    def _fail(self, status: int, reason: int) -> None:
        """The upstream failed before a response head: answer ``status`` ourselves."""
        if self.response_done:
            return
        self.response_done = True
        self.status = status
        STATS.answered_locally(reason)
        if self.run is not None:
            self.run.cancel()
        self._drop_upstream()
        self.out.clear()
        self.client.set_paused(PAUSE_BUFFERED, False)
        self.client.write(msg.local_response(status, self.connection_header()))
        if self.request_done:
            self._finish()

    # --- timeouts and retries (see turnout.dataplane.policy) ----------------------------------

    def request_timed_out(self) -> None:
        """timeouts.request passed: 504, or a cut-off response if one was started."""
        if self.response_done:
            return
        if self.response_started:
            self.abort()
            self.client.abort()
            return
        self._fail(504, UPSTREAM_TIMEOUT)
