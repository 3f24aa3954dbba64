"""stats: what the data plane of one process counts (requests, local answers, upstream failures).

Place in the pipeline: the request path increments these counters where it already decides
something once per request (an exchange's response complete, a local answer chosen, a
connect failed); :meth:`turnout.dataplane.server.DataPlane.stats_snapshot` copies them into a
:class:`turnout.dataplane.snapshot.Snapshot`, which a worker sends to the control plane
every second (:mod:`turnout.dataplane.worker`) and the admin API renders as Prometheus
series (:mod:`turnout.admin.dataplane_metrics`).

Why plain objects and no metrics library here: compiled by mypyc, ``STATS.x += 1`` on a
native class is a few machine instructions (a static load, a tagged-int add), where a
prometheus_client counter takes a lock and a label lookup. A process is single-threaded
(one event loop), so nothing here needs a lock; totals over processes are summed by the
control plane. Counters only go up; the control plane keeps them monotonic across
worker restarts.

Per backend cluster, the counts live on the :class:`turnout.dataplane.upstream.UpstreamCluster`
the request was routed to (``cluster.stats``, a :class:`StatusCounts`): the exchange has
that object in hand, so counting costs no lookup by name. The data plane gives every
cluster object of one name the same :class:`StatusCounts`, so a cluster rebuilt by a new
configuration keeps counting where it was.
"""

from __future__ import annotations

from typing import Final

# Why a request was answered by the data plane itself instead of by a backend: indexes of
# DataPlaneStats.local, named in REASONS (the label values of /metrics).
NO_ROUTE: Final = 0  # 404: no listener host or rule matched
NO_ENDPOINT: Final = 1  # 503: the backend cluster has no ready endpoint
INVALID_BACKEND: Final = 2  # 500: a rule that cannot forward (invalid or no backendRef)
REDIRECT: Final = 3  # 3xx: a RequestRedirect filter
CORS_PREFLIGHT: Final = 4  # 204: a CORS preflight answered by the gateway (GEP-1767)
METHOD_NOT_ALLOWED: Final = 5  # 405: CONNECT
CONNECT_FAILED: Final = 6  # 503: connecting to the backend failed (after failover/retries)
UPSTREAM_RESET: Final = 7  # 503: the backend closed or reset before a response head
BAD_RESPONSE: Final = 8  # 502: the backend's response was malformed
UPSTREAM_TIMEOUT: Final = 9  # 504: timeouts.request or timeouts.backendRequest passed
BAD_REQUEST: Final = 10  # 400/505: a malformed request (head, framing, target, version)
URI_TOO_LONG: Final = 11  # 414
HEADERS_TOO_LARGE: Final = 12  # 431
REQUEST_TIMEOUT: Final = 13  # 408: a request head did not arrive in time
INTERNAL_ERROR: Final = 14  # 500: a bug while handling a request (logged)
MISDIRECTED: Final = 15  # 421: HTTPS, a Host another listener's certificate is for (tls.py)

REASONS: Final = (
    "no_route",
    "no_endpoint",
    "invalid_backend",
    "redirect",
    "cors_preflight",
    "method_not_allowed",
    "upstream_connect_failure",
    "upstream_reset",
    "upstream_bad_response",
    "upstream_timeout",
    "bad_request",
    "uri_too_long",
    "headers_too_large",
    "request_timeout",
    "internal_error",
    "misdirected",
)

CODE_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")


class StatusCounts:
    """Responses by status class (1xx..5xx); a status below 200 counts as 1xx, one of 500
    or more as 5xx (backends' statuses are checked to be 100-599 before they get here)."""

    __slots__ = ("c1xx", "c2xx", "c3xx", "c4xx", "c5xx")

    def __init__(self) -> None:
        self.c1xx = 0
        self.c2xx = 0
        self.c3xx = 0
        self.c4xx = 0
        self.c5xx = 0

    def add(self, status: int) -> None:
        if status < 300:
            if status >= 200:
                self.c2xx += 1
            else:
                self.c1xx += 1
        elif status < 400:
            self.c3xx += 1
        elif status < 500:
            self.c4xx += 1
        else:
            self.c5xx += 1

    def values(self) -> list[int]:
        """The counts in CODE_CLASSES order."""
        return [self.c1xx, self.c2xx, self.c3xx, self.c4xx, self.c5xx]


class DataPlaneStats:
    """The counters of one process's data plane (one instance: :data:`STATS`)."""

    __slots__ = (
        "downstream_connections",
        "ejections",
        "l4_connections",
        "local",
        "responses",
        "udp_sessions",
        "upstream_connect_failures",
        "upstream_resets",
    )

    def __init__(self) -> None:
        # HTTP/1.1 exchanges and HTTP/2 streams whose response was sent completely.
        self.responses = StatusCounts()
        self.local: list[int] = [0] * len(REASONS)  # indexed by the reasons above
        self.upstream_connect_failures = 0
        self.upstream_resets = 0
        self.ejections = 0
        self.downstream_connections = 0  # HTTP/HTTPS client connections accepted
        self.l4_connections = 0  # TCPRoute / TLSRoute (passthrough) connections accepted
        self.udp_sessions = 0  # UDPRoute sessions (client address/port pairs) started

    def answered_locally(self, reason: int) -> None:
        self.local[reason] += 1


# The process's counters. Final: mypyc reads it as a C static, not a module-dict lookup.
STATS: Final = DataPlaneStats()
