"""snapshot: a copy of a data plane's counters, as sent from a worker and summed for /metrics.

Place in the pipeline: :meth:`turnout.dataplane.server.DataPlane.stats_snapshot` copies
the live counters of :mod:`turnout.dataplane.stats` into a :class:`Snapshot`; a worker
process sends one every second over its control channel (:mod:`turnout.dataplane.worker`),
:class:`turnout.workers.WorkerSet` keeps the last one per worker and sums them (plus what
workers that exited had counted), and :mod:`turnout.admin.dataplane_metrics` renders the sum.
A msgspec Struct, so it travels as msgpack; interpreted (not compiled by mypyc), as it is
built once a second, never per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from turnout.dataplane.stats import CODE_CLASSES, REASONS, DataPlaneStats, StatusCounts

# The plain counters of a Snapshot (summed field by field).
COUNTERS = (
    "upstream_connect_failures",
    "upstream_resets",
    "ejections",
    "downstream_connections",
    "l4_connections",
    "udp_sessions",
)


class Snapshot(msgspec.Struct, frozen=True):
    """Counters (monotonic) and one gauge (``downstream_active``) of one or more processes."""

    requests: list[int] = msgspec.field(default_factory=lambda: [0] * len(CODE_CLASSES))
    local: dict[str, int] = msgspec.field(default_factory=dict)  # by stats.REASONS
    upstream_connect_failures: int = 0
    upstream_resets: int = 0
    ejections: int = 0
    downstream_connections: int = 0
    l4_connections: int = 0
    udp_sessions: int = 0
    # cluster name -> responses by CODE_CLASSES; clusters that never had a request are left out
    backends: dict[str, list[int]] = msgspec.field(default_factory=dict)
    downstream_active: int = 0  # a gauge: not carried over when a worker exits


def take(stats: DataPlaneStats, clusters: Mapping[str, StatusCounts], active: int) -> Snapshot:
    """A copy of ``stats`` and the per-cluster counts (those not all zero)."""
    backends = {}
    for name, counts in clusters.items():
        values = counts.values()
        if any(values):
            backends[name] = values
    return Snapshot(
        requests=stats.responses.values(),
        local={reason: n for reason, n in zip(REASONS, stats.local, strict=True) if n},
        upstream_connect_failures=stats.upstream_connect_failures,
        upstream_resets=stats.upstream_resets,
        ejections=stats.ejections,
        downstream_connections=stats.downstream_connections,
        l4_connections=stats.l4_connections,
        udp_sessions=stats.udp_sessions,
        backends=backends,
        downstream_active=active,
    )


def total(snapshots: Iterable[Snapshot], *, gauges: bool = True) -> Snapshot:
    """The sum of ``snapshots``; without ``gauges`` the gauge is 0 (a base of retired
    workers: what they counted stays, what was open in them is gone)."""
    snaps = list(snapshots)
    requests = [0] * len(CODE_CLASSES)
    local: dict[str, int] = {}
    backends: dict[str, list[int]] = {}
    for snap in snaps:
        requests = [a + b for a, b in zip(requests, snap.requests, strict=True)]
        for reason, n in snap.local.items():
            local[reason] = local.get(reason, 0) + n
        for name, values in snap.backends.items():
            before = backends.get(name, [0] * len(CODE_CLASSES))
            backends[name] = [a + b for a, b in zip(before, values, strict=True)]
    return Snapshot(
        requests=requests,
        local=local,
        upstream_connect_failures=sum(s.upstream_connect_failures for s in snaps),
        upstream_resets=sum(s.upstream_resets for s in snaps),
        ejections=sum(s.ejections for s in snaps),
        downstream_connections=sum(s.downstream_connections for s in snaps),
        l4_connections=sum(s.l4_connections for s in snaps),
        udp_sessions=sum(s.udp_sessions for s in snaps),
        backends=backends,
        downstream_active=sum(s.downstream_active for s in snaps) if gauges else 0,
    )
