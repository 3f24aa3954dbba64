"""The admin API: a small loopback-only HTTP/1.1 server beside the data plane.

It is where a standalone gateway reports what a Kubernetes controller would write to
the API server: the status of every object (`/status`), plus what it is serving
(`/config`, the redacted IR), whether it is alive and ready (`/healthz`, `/readyz`) and
Prometheus metrics (`/metrics`). The server knows nothing of the pipeline: it asks an
`AdminProvider`, which the runtime implements. `/metrics` renders prometheus_client's
registry, where `dataplane_metrics` registers the data plane's counters (summed over
the worker processes).
"""

from __future__ import annotations

from typing import Any, Protocol

from turnout.admin.server import start_admin


class AdminProvider(Protocol):
    """What the admin API serves. Every method is called on the event loop and must
    not block: return what was last computed."""

    def healthy(self) -> bool:
        """The process is working (liveness)."""
        ...

    def ready(self) -> bool:
        """A configuration has been loaded and the data plane is serving it."""
        ...

    def status_items(self) -> list[dict[str, Any]]:
        """Kubernetes-shaped objects with `.status` filled in.

        The same list object until the status changes, and never mutated in place (like
        `load_errors`): the admin API renders `/status` once per pair of lists."""
        ...

    def load_errors(self) -> list[str]:
        """Errors of the last load (files that do not parse, invalid objects): the
        objects concerned keep serving their last good version."""
        ...

    def config_json(self) -> bytes:
        """The IR being served, as JSON, with secrets already redacted."""
        ...


__all__ = ["AdminProvider", "start_admin"]
