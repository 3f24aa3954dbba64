"""policy: HTTPRoute timeouts (GEP-1742) and retries (GEP-1731) for one proxied exchange.

Place in the pipeline: :mod:`turnout.dataplane.router` compiles a rule's timeouts and
retry stanza into a :class:`RoutePolicy` on each of its targets (None when the rule has
neither, so such requests pay one attribute test). :class:`turnout.dataplane.exchange.Exchange`
creates a :class:`PolicyRun` when it forwards under a policy; the run owns the timers
(``loop.call_later`` handles, cancelled when the exchange ends: no Task per request) and
the copy of the request kept for retries.

Retries re-send the request bytes recorded here: the head and, for a request with a
body, the framed body as far as it has been read -- but only while that body stays
within ``Limits.retry_buffer_bytes`` (64 KiB by default). A larger body is streamed
without a copy, and once any of it has been sent the request is no longer retried.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from turnout import ir


class PolicyUser(Protocol):
    """What a run drives: an HTTP/1.1 exchange or an HTTP/2 stream."""

    def upstream_may_retry(self) -> bool: ...
    def retry(self, sent: list[bytes]) -> None: ...
    def request_timed_out(self) -> None: ...
    def backend_timed_out(self) -> None: ...


class RoutePolicy:
    """A rule's timeouts and retry stanza, compiled."""

    __slots__ = ("attempts", "backend_timeout", "backoff", "codes", "request_timeout", "retries")

    def __init__(self, rule: ir.HTTPRouteRule) -> None:
        self.request_timeout = rule.request_timeout
        self.backend_timeout = rule.backend_request_timeout
        retry = rule.retry
        self.retries = retry is not None
        self.attempts = 0 if retry is None else retry.attempts
        self.codes = frozenset(() if retry is None else retry.codes)
        self.backoff = 0.0 if retry is None else retry.backoff


def compile_policy(rule: ir.HTTPRouteRule) -> RoutePolicy | None:
    if rule.request_timeout is None and rule.backend_request_timeout is None and not rule.retry:
        return None
    return RoutePolicy(rule)


class PolicyRun:
    """Timers and retry state of one exchange under a :class:`RoutePolicy`."""

    __slots__ = (
        "_backend_timer",
        "_backoff_timer",
        "_request_timer",
        "buffer_left",
        "exchange",
        "loop",
        "policy",
        "retries_done",
        "sent",
        "waiting",
    )

    def __init__(self, exchange: PolicyUser, policy: RoutePolicy, head: bytes, buffer: int) -> None:
        self.exchange = exchange
        self.policy = policy
        self.loop = asyncio.get_running_loop()
        self.retries_done = 0
        # Request bytes as sent upstream, for a retry; None once too large to keep.
        self.sent: list[bytes] | None = [head] if policy.retries else None
        self.buffer_left = buffer
        self.waiting = False  # an upstream connection was asked for and not yet given
        self._request_timer: asyncio.TimerHandle | None = None
        self._backend_timer: asyncio.TimerHandle | None = None
        self._backoff_timer: asyncio.TimerHandle | None = None

    def record(self, data: bytes) -> None:
        sent = self.sent
        if sent is not None:
            self.buffer_left -= len(data)
            if self.buffer_left < 0:
                self.sent = None  # too large to keep: this request will not be retried
            else:
                sent.append(data)

    def started(self) -> None:
        """The exchange reached the front of its connection: the request timeout runs."""
        timeout = self.policy.request_timeout
        if timeout is not None:
            self._request_timer = self.loop.call_later(timeout, self.exchange.request_timed_out)

    def attempt_started(self) -> None:
        timeout = self.policy.backend_timeout
        if timeout is not None:
            self._backend_timer = self.loop.call_later(timeout, self.exchange.backend_timed_out)

    def attempt_ended(self) -> None:
        if self._backend_timer is not None:
            self._backend_timer.cancel()
            self._backend_timer = None

    def retry_on(self, status: int) -> bool:
        return status in self.policy.codes and self.can_retry()

    def can_retry(self) -> bool:
        return (
            self.policy.retries
            and self.retries_done < self.policy.attempts
            and self.sent is not None
            and self.exchange.upstream_may_retry()
        )

    def schedule_retry(self) -> None:
        self.attempt_ended()
        self.retries_done += 1
        self._backoff_timer = self.loop.call_later(self.policy.backoff, self._retry_now)

    def _retry_now(self) -> None:
        self._backoff_timer = None
        assert self.sent is not None
        self.exchange.retry(list(self.sent))

    def cancel(self) -> None:
        for timer in (self._request_timer, self._backend_timer, self._backoff_timer):
            if timer is not None:
                timer.cancel()
        self._request_timer = self._backend_timer = self._backoff_timer = None
