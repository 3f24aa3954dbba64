"""limits: the data plane's hardening defaults, in one place.

Place in the pipeline: a :class:`Limits` is given to each
:class:`turnout.dataplane.http1.SocketState` (the defaults when nothing is configured);
``turnout run`` has a flag for each field (turnout.cli), sent to every worker process.
Sizes are bytes, times seconds.

The defaults follow what nginx and the common Go/Python servers ship with: generous for
real clients, small enough that a hostile one cannot hold much memory or many sockets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    # Request line (method, target, version) -> 414 when longer.
    max_request_line: int = 8 * 1024
    # The whole request head (request line + header fields) -> 431 when larger.
    max_head_bytes: int = 64 * 1024
    # Header fields per request -> 431 when more.
    max_header_fields: int = 100
    # From connection start, or from the first byte of a request after an idle period,
    # until the end of its head -> 408 and close (silent close if nothing was received).
    header_timeout: float = 10.0
    # A keep-alive connection with no request in flight is closed after this long.
    idle_timeout: float = 60.0
    # Client connections per worker process; beyond it a new one is closed at once.
    max_connections: int = 10_000
    # An upstream response head larger than this (or with more than 2 x
    # max_header_fields fields) -> 502 and the upstream connection is closed.
    max_upstream_head_bytes: int = 64 * 1024
    # Request bodies up to this size are kept in memory for rules with a retry policy,
    # so that the request can be sent again; a larger body disables retries for it.
    retry_buffer_bytes: int = 64 * 1024
    # A UDP session (client address -> backend) ends after this long without a datagram
    # either way; the next datagram from that address starts a new one.
    udp_idle_timeout: float = 60.0


DEFAULT_LIMITS = Limits()
