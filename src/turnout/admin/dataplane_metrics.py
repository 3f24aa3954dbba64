"""dataplane_metrics: the data plane's counters as Prometheus series in /metrics.

Place in the pipeline: the data plane counts in plain native objects
(:mod:`turnout.dataplane.stats`); the runtime points :data:`COLLECTOR` at a function that
returns a :class:`turnout.dataplane.snapshot.Snapshot` -- summed over the worker processes
and the workers that exited (:meth:`turnout.workers.WorkerSet.stats_snapshot`), or the
in-process :class:`turnout.dataplane.server.DataPlane`'s own. /metrics is answered
synchronously (:mod:`turnout.admin.server`), so the collector renders the latest snapshot
it is given, without waiting for workers: with workers, a count is at most about a second old.

A custom Collector rather than prometheus_client Counters: the totals are computed
elsewhere (in other processes) and only copied here, and a Counter can only be
incremented. It is registered once, at import; with no source it yields nothing, so
/metrics never shows data-plane series that nothing counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import prometheus_client
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from turnout.dataplane.snapshot import Snapshot
from turnout.dataplane.stats import CODE_CLASSES, REASONS

HELP = {
    "turnout_http_requests": (
        "HTTP requests whose response the data plane sent completely, by status class "
        "of that response; HTTP/1.1 and HTTP/2 (gRPC included: a gRPC error the gateway "
        "answers itself is a trailers-only response with HTTP status 200). A response "
        "cut off (client gone, backend lost mid-body) is not counted"
    ),
    "turnout_http_local_responses": (
        "HTTP requests the data plane answered itself instead of a backend, by reason "
        "(counted when the answer is decided)"
    ),
    "turnout_upstream_connect_failures": (
        "Connections to backend endpoints that could not be opened (refused, unreachable, "
        "timed out, TLS handshake or certificate check failed, closed right after connect)"
    ),
    "turnout_upstream_resets": (
        "Requests whose backend connection (HTTP/1.1) or stream (HTTP/2) was closed or "
        "reset by the backend before their response was complete"
    ),
    "turnout_endpoint_ejections": (
        "Times a backend endpoint was ejected by passive health checking (a failed "
        "connect or a fresh connection lost before any response)"
    ),
    "turnout_downstream_connections": (
        "Client connections accepted on HTTP and HTTPS listeners (including those shed "
        "at once over the per-worker connection limit)"
    ),
    "turnout_downstream_connections_active": (
        "Client connections open now on HTTP and HTTPS listeners (HTTP/1.1 and HTTP/2; "
        "not connections upgraded to a tunnel such as a WebSocket)"
    ),
    "turnout_backend_requests": (
        "HTTP requests routed to a backend cluster whose response was sent completely, "
        "by cluster and status class (the backend's response, or the gateway's own "
        "502/503/504 when the backend failed or had no ready endpoint)"
    ),
    "turnout_l4_connections": "Client connections accepted on TCP and TLS listeners",
    "turnout_udp_sessions": "UDP sessions (new client address and port) started on UDP listeners",
}


class DataPlaneCollector(Collector):
    """Renders the snapshot that ``source`` returns (None: no data plane, no series)."""

    def __init__(self) -> None:
        self.source: Callable[[], Snapshot] | None = None

    def collect(self) -> Iterator[Metric]:
        source = self.source
        if source is None:
            return
        yield from metrics(source())


def metrics(snap: Snapshot) -> Iterator[Metric]:
    """The Prometheus metric families of ``snap``."""
    requests = CounterMetricFamily(
        "turnout_http_requests", HELP["turnout_http_requests"], labels=["code_class"]
    )
    for code_class, n in zip(CODE_CLASSES, snap.requests, strict=True):
        requests.add_metric([code_class], n)
    yield requests
    local = CounterMetricFamily(
        "turnout_http_local_responses", HELP["turnout_http_local_responses"], labels=["reason"]
    )
    for reason in REASONS:
        local.add_metric([reason], snap.local.get(reason, 0))
    yield local
    for name, value in (
        ("turnout_upstream_connect_failures", snap.upstream_connect_failures),
        ("turnout_upstream_resets", snap.upstream_resets),
        ("turnout_endpoint_ejections", snap.ejections),
        ("turnout_downstream_connections", snap.downstream_connections),
        ("turnout_l4_connections", snap.l4_connections),
        ("turnout_udp_sessions", snap.udp_sessions),
    ):
        yield CounterMetricFamily(name, HELP[name], value=value)
    yield GaugeMetricFamily(
        "turnout_downstream_connections_active",
        HELP["turnout_downstream_connections_active"],
        value=snap.downstream_active,
    )
    backends = CounterMetricFamily(
        "turnout_backend_requests",
        HELP["turnout_backend_requests"],
        labels=["backend", "code_class"],
    )
    for backend in sorted(snap.backends):
        for code_class, n in zip(CODE_CLASSES, snap.backends[backend], strict=True):
            backends.add_metric([backend, code_class], n)
    yield backends


COLLECTOR = DataPlaneCollector()
prometheus_client.REGISTRY.register(COLLECTOR)
