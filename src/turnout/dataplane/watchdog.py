"""watchdog: per-worker connection count and coarse deadlines for client connections.

Place in the pipeline: every :class:`turnout.dataplane.http1.ClientConnection` registers
with the :class:`Watchdog` of its event loop when it is made, and leaves when it is lost.

Why a sweep and not one ``call_later`` per connection: a keep-alive connection changes
between "reading a head" and "idle" on every request; re-arming a timer handle each time
would cost an allocation and a heap operation per request. Instead a connection only
stores a deadline (a float, 0 when none applies) computed from :attr:`Watchdog.now`, a
clock the sweep refreshes, and one timer per event loop walks the connections every
``tick`` seconds. The sweep runs only while connections exist. A deadline fires within
one tick of its nominal time; the tick is a quarter of the shortest timeout in use,
capped at one second.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

MAX_TICK = 1.0


class Timed(Protocol):
    deadline: float  # loop time; 0.0 when no deadline applies

    def deadline_passed(self) -> None: ...


class Watchdog:
    """The client connections of one event loop (one worker)."""

    __slots__ = ("_handle", "connections", "now", "tick")

    def __init__(self) -> None:
        self.connections: set[Timed] = set()
        self.now = 0.0
        self.tick = MAX_TICK
        self._handle: asyncio.TimerHandle | None = None

    def add(self, conn: Timed, loop: asyncio.AbstractEventLoop, shortest_timeout: float) -> None:
        self.connections.add(conn)
        tick = min(MAX_TICK, shortest_timeout / 4)
        if self._handle is None or tick < self.tick:
            if self._handle is not None:
                self._handle.cancel()
            self.tick = tick
            self.now = loop.time()
            self._handle = loop.call_later(tick, self._sweep)

    def discard(self, conn: Timed) -> None:
        self.connections.discard(conn)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = self.now = loop.time()
        expired = [c for c in self.connections if 0.0 < c.deadline <= now]
        for conn in expired:
            conn.deadline = 0.0
            conn.deadline_passed()
        if self.connections:
            self._handle = loop.call_later(self.tick, self._sweep)
        else:
            self._handle = None
            self.tick = MAX_TICK


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = (
    weakref.WeakKeyDictionary()
)


def for_running_loop() -> tuple[Watchdog, asyncio.AbstractEventLoop] | None:
    """The watchdog of the running loop; None outside one (sans-IO tests: no timers)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    watchdog = _watchdogs.get(loop)
    if watchdog is None:
        watchdog = _watchdogs[loop] = Watchdog()
    return watchdog, loop
