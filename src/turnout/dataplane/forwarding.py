"""What an HTTP/1.1 exchange and an HTTP/2 stream do alike to reach a backend.

Part of the data plane. ``exchange.Exchange`` and ``h2stream.H2Stream`` speak different
protocols to the client but forward, fail over and retry the same way: this base class
holds that once, so a change to failover or retries cannot reach one protocol and miss
the other. It declares the attributes and hooks both provide, which is also all that
``dispatch.route_request`` may use of either (compiled by mypyc, these declarations are
the instance layout, checked at run time).
"""

from __future__ import annotations

import httptools

from turnout.dataplane.limits import Limits
from turnout.dataplane.mirror import MirrorExchange
from turnout.dataplane.policy import PolicyRun
from turnout.dataplane.router import Target
from turnout.dataplane.stats import (
    BAD_RESPONSE,
    CONNECT_FAILED,
    NO_ENDPOINT,
    STATS,
    UPSTREAM_RESET,
    UPSTREAM_TIMEOUT,
)
from turnout.dataplane.upstream import (
    EndpointPool,
    UpstreamConnection,
    UpstreamProtocolError,
    UpstreamUser,
)


class Forwarding(UpstreamUser):
    """Forwarding, failover and retries of one request (see turnout.dataplane.policy)."""

    def __init__(self, keep_alive: bool) -> None:
        # what route_request (turnout.dataplane.dispatch) reads and sets
        self.keep_alive = keep_alive
        self.head_request = False
        self.has_body = False
        self.upgrade: bytes | None = None  # the Upgrade value (WebSocket), HTTP/1.1 only
        self.mirrors: list[MirrorExchange] | None = None  # copies still taking the body
        # what to do (unless answered locally): forward to `pool`
        self.pool: EndpointPool | None = None
        self.target: Target | None = None
        self.run: PolicyRun | None = None  # timeouts/retries, when the rule has them
        # request direction
        self.head = b""
        self.out: list[bytes] = []  # bytes for the upstream, not yet written
        self.out_size = 0
        self.chunked = False
        self.request_done = False
        self.retried = False
        self.failed_over = False  # a failed connect was retried on another endpoint
        # response direction
        self.upstream: UpstreamConnection | None = None
        self.response_started = False
        self.response_done = False
        self.interim = False
        self.upstream_framed = True
        self.upstream_keep = False
        # The status of the final response to the client, once decided (stats.py counts it).
        self.status = 0

    def _fail(self, status: int, reason: int) -> None:
        """Answer ``status`` here: the backend failed for ``reason`` (turnout.dataplane.stats)."""
        raise NotImplementedError

    def count_response(self) -> None:
        """The response was sent completely: count it, and for its backend cluster."""
        status = self.status
        STATS.responses.add(status)
        target = self.target
        if target is not None:
            cluster = target.cluster
            if cluster is not None:
                cluster.stats.add(status)

    def connection_header(self) -> bytes:
        """The Connection header of a local answer (HTTP/1.1 framing of the client side)."""
        raise NotImplementedError

    def local_status(self, status: int, reason: int) -> None:
        """Answer with ``status`` here instead of forwarding, counted under ``reason``
        (turnout.dataplane.stats)."""
        raise NotImplementedError

    def local_answer(self, response: bytes, reason: int) -> None:
        """Answer with ``response``, a whole HTTP/1.1 response (turnout.dataplane.messages),
        counted under ``reason``."""
        raise NotImplementedError

    def _limits(self) -> Limits:
        raise NotImplementedError

    def _cut_response_short(self) -> None:
        """End a response already started toward the client, after a backend timeout."""
        raise NotImplementedError

    def _restart_response(self) -> None:
        """Forget what a failed attempt left to send to the client (a retry starts over)."""

    def forward(self, pool: EndpointPool, head: bytes, target: Target, chunked: bool) -> None:
        self.pool = pool
        self.head = head
        self.target = target
        self.chunked = chunked
        self.out.append(head)
        self.out_size = len(head)
        if target.policy is not None:
            limits = self._limits()
            self.run = PolicyRun(self, target.policy, head, limits.retry_buffer_bytes)  # type: ignore[arg-type]

    @property
    def forwarding(self) -> bool:
        return self.pool is not None

    def _acquire(self, pool: EndpointPool) -> None:
        run = self.run
        if run is not None:
            run.waiting = True
            run.attempt_started()
        pool.acquire(self)

    def connect_failed(self, exc: BaseException) -> None:
        run = self.run
        if run is not None:
            if not run.waiting:
                return  # an attempt given up already
            run.waiting = False
            if run.can_retry():
                run.schedule_retry()
                return
        if self._fail_over():
            return
        # 503 as for an unreachable backend (Envoy's "upstream connect error"); the
        # retry conformance tests accept 500 or 503 once connection retries run out.
        self._fail(503, CONNECT_FAILED)

    def _lost_before_response(self, conn: UpstreamConnection, exc: BaseException | None) -> None:
        """The upstream connection failed before a response head: retry, or fail."""
        run = self.run
        if run is not None and run.can_retry():
            run.schedule_retry()
            return
        malformed = isinstance(exc, httptools.HttpParserError | UpstreamProtocolError)
        if conn.requests > 1 and not self.has_body and not self.retried and not malformed:
            pool = self.pool
            if pool is not None:
                self.retried = True  # a reused keep-alive connection raced with its close
                self.out = [self.head]
                pool.acquire(self, fresh=True)
                return
        # A malformed response is the backend's fault (502); a connection reset or
        # closed before any response means the backend is unavailable (503).
        if malformed:
            self._fail(502, BAD_RESPONSE)
        else:
            self._fail(503, UPSTREAM_RESET)

    def _release_upstream(self) -> None:
        """The response is complete: stop the policy's timers, hand the connection back
        (reusable only if both messages were read to their framed end)."""
        if self.run is not None:
            self.run.cancel()
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.release(self.upstream_keep and self.request_done and self.upstream_framed)

    def _fail_over(self) -> bool:
        """The connect failed, so nothing was sent: try once more on another endpoint.

        Always safe, whatever the method (passive health checking, see
        turnout.dataplane.health); the failed endpoint is ejected by now.
        """
        target = self.target
        failed = self.pool
        if self.failed_over or self.response_done or target is None or failed is None:
            return False
        other = None if target.cluster is None else target.cluster.pick(avoid=failed)
        if other is None:
            return False
        self.failed_over = True
        self.pool = other
        self._acquire(other)
        return True

    def upstream_may_retry(self) -> bool:
        return not self.response_started and not self.response_done

    def retry(self, sent: list[bytes]) -> None:
        """Send the request again, to an endpoint chosen afresh."""
        target = self.target
        pool = None if target is None or target.cluster is None else target.cluster.pick()
        if self.response_done or pool is None:
            self._fail(503, NO_ENDPOINT)
            return
        self.pool = pool
        self.out = sent
        self.out_size = sum(len(data) for data in sent)
        self.interim = False
        self._restart_response()
        self._acquire(pool)

    def _drop_upstream(self) -> None:
        """Close the upstream connection: mid-exchange its state is unknown, never pooled."""
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.close()

    def _take_connection(self, conn: UpstreamConnection) -> bool:
        """The pool handed over ``conn``: keep it, unless nobody wants it any more."""
        run = self.run
        if self.response_done or (run is not None and not run.waiting):
            conn.release(True)  # the client left, or the attempt was given up, meanwhile
            return False
        if run is not None:
            run.waiting = False
        self.upstream = conn
        return True

    def backend_timed_out(self) -> None:
        """timeouts.backendRequest passed for this attempt: retry it, or 504."""
        run = self.run
        if self.response_done or run is None:
            return
        if self.response_started:
            self._cut_response_short()
            return
        self._drop_upstream()
        run.waiting = False  # a connect still pending is given up
        if run.can_retry():
            run.schedule_retry()
        else:
            self._fail(504, UPSTREAM_TIMEOUT)
