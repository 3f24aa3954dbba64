"""When the cyclic garbage collector runs in a long-running control plane.

Why this exists: CPython's full collection walks every tracked object. At 5,000 routes
the control plane holds about a million of them (parsed manifests, graph, status, IR,
compiled tables), so one full collection stalls the event loop, which also serves
traffic, for about a second on a small VM. Left alone, the collector ran several full
collections during each reload (measured in process at 5,000 routes: 17 of them,
9.6 s of a 17 s run). ``ReloadCollector`` schedules it instead:

* during a reload, automatic collection is off (``paused``): nothing is lost, reference
  counting still frees what it can, and nothing walks the heap mid-reload;
* after a reload, everything alive is moved to the permanent generation (``gc.freeze``,
  O(1)), which later automatic collections do not walk: the configuration objects are
  long-lived and free of cycles (a replaced Graph has its cycles broken by
  ``turnout.graph.release.release``), so they are freed by reference counting when a
  later reload replaces them, frozen or not;
* the price of freezing: cyclic garbage made of objects that were alive at a freeze
  (a connection closing later, say) is not reclaimed until ``collect_all`` unfreezes
  everything and runs one full collection. That happens once reloads have been quiet
  for ``IDLE_DELAY`` seconds, and at least every ``EVERY_RELOADS`` reloads, which
  bounds what can accumulate.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

# A full collection walks every object (about 1-2 s at 5,000 routes) and delays a change
# that arrives meanwhile. Reloads patch in place and leave almost no cyclic garbage
# (measured: none found at 5,000 routes), so it runs rarely: after 10 minutes without a
# reload (with a reload every 30 s, a 10 s delay put a stall in every interval: about 7%
# of changes waited up to 2 s), and at least every 1,000 reloads.
IDLE_DELAY = 600.0  # seconds without a reload before the full collection
EVERY_RELOADS = 1000  # a full collection at least this often
# With the data plane in the same process (``turnout run --workers 0``), client connections
# alive at a freeze are frozen cyclic garbage once they close: collect as often as before.
IN_PROCESS_IDLE_DELAY = 10.0
IN_PROCESS_EVERY_RELOADS = 100


_paused_for_start = False


def pause_for_start() -> None:
    """No automatic cyclic collection from now until :func:`end_pause_for_start`.

    Starting `turnout run` imports pydantic and ~90 models and loads every manifest:
    hundreds of thousands of long-lived objects whose allocation triggers collections
    that walk them again and again (measured: 40 ms of the 0.24 s of imports). Once
    the first configuration is served, the first reload has frozen them (see
    ReloadCollector), and collection resumes on what comes after.
    """
    global _paused_for_start
    if gc.isenabled():
        gc.disable()
        _paused_for_start = True


def end_pause_for_start() -> None:
    """End :func:`pause_for_start` (a no-op without it, or when already ended)."""
    global _paused_for_start
    if _paused_for_start:
        _paused_for_start = False
        gc.enable()


class collector_paused:  # lower-case like the contextlib managers it stands beside
    """Disable automatic cyclic collection inside the block (reference counting still
    frees what it can); restore the previous state after it. Usable with ``with`` and
    ``async with`` (a reload awaits the data plane)."""

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *_exc: object) -> None:
        if self._was_enabled:
            gc.enable()

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


class ReloadCollector:
    """Freeze after each reload; one full collection when reloads go quiet."""

    def __init__(self, idle_delay: float = IDLE_DELAY, every: int = EVERY_RELOADS) -> None:
        self._idle_delay = idle_delay
        self._every = every
        self._since_full = 0
        self._timer: asyncio.TimerHandle | None = None

    def reloaded(self) -> None:
        """Call on the event loop once a reload's objects are in place."""
        gc.freeze()
        self._since_full += 1
        if self._since_full >= self._every:
            self.collect_all()
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._idle_delay, self.collect_all)

    def collect_all(self) -> None:
        """Unfreeze, collect every generation, freeze what survived."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._since_full = 0
        log.debug(
            "full garbage collection: %d unreachable objects, %.0f ms",
            found,
            (time.perf_counter() - started) * 1000,
        )

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
