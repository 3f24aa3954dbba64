"""health: passive health checking of backend endpoints (outlier ejection).

Place in the pipeline: each :class:`turnout.dataplane.upstream.EndpointPool` owns an
:class:`EndpointHealth`; :class:`turnout.dataplane.upstream.UpstreamCluster` skips the
endpoints it says are ejected when it picks one. Nothing here does I/O: the pool reports
what happened, with the current time, and the cluster asks.

Theory of operation: there are no probes; real requests are the probes.

* An endpoint that refuses a connection, cannot be reached in time, or closes or resets
  a fresh connection before any response arrived has **failed**. It is ejected for
  ``EJECT_BASE`` seconds, doubled for each further failure in a row, up to
  ``EJECT_MAX``. Failures reported while it is already ejected (connects that were
  started before the ejection) do not extend it.
* When the ejection has passed, the endpoint may be picked again (half-open): the next
  request sent there is the probe. A response head from it is a **success** and resets
  the back-off; another failure ejects it for twice as long.
* A reused keep-alive connection that the backend closed just as it was reused is not a
  failure: that race is normal (http1 retries it on a fresh connection).
* When every endpoint of a cluster is ejected, the cluster still answers with the one
  whose ejection ends first ("panic" in Envoy's terms): trying a possibly dead endpoint
  beats refusing every request when all of them are flagged.
"""

from __future__ import annotations

from turnout.dataplane.stats import STATS

EJECT_BASE = 1.0  # seconds an endpoint is ejected after its first failure in a row
EJECT_MAX = 30.0  # the cap of the exponential back-off


class EndpointHealth:
    """What requests have shown about one endpoint."""

    __slots__ = ("ejected_until", "ejections", "failures")

    def __init__(self) -> None:
        self.failures = 0  # consecutive failures (each one that ejected the endpoint)
        self.ejected_until = 0.0  # monotonic time; 0.0 when healthy (the fast path)
        self.ejections = 0  # how often it was ejected, ever (for logs and tests)

    def failed(self, now: float) -> float | None:
        """A connect or fresh connection failed; the new ejection's length, if it began one."""
        if self.ejected_until > now:
            return None  # already ejected: an attempt that began before the ejection
        self.failures += 1
        duration = min(EJECT_MAX, EJECT_BASE * 2.0 ** min(self.failures - 1, 32))
        self.ejected_until = now + duration
        self.ejections += 1
        STATS.ejections += 1
        return duration

    def succeeded(self) -> None:
        """A response head came back: healthy again, back-off reset."""
        self.failures = 0
        self.ejected_until = 0.0

    def available(self, now: float) -> bool:
        return self.ejected_until <= now
