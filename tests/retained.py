"""Retained memory of a repeated operation, for the leak tests (tests/*/test_leaks*.py).

A leak is memory that stays allocated in proportion to how often something happened:
requests served, connections closed, configurations applied, routes edited. This module
measures exactly that, with no clock involved: run an operation ``warmup`` times (so
that every bounded cache and free list reaches its working size), note the memory
tracemalloc traces after a full garbage collection, run it ``steps`` more times, collect
and note it again. The difference is what those ``steps`` runs retained. A bounded cache
that filled up during the warm-up retains nothing more; anything that keeps a little per
run grows with ``steps``. Snapshots taken at both points say where, when a test fails.

tracemalloc counts every block allocated through Python's allocators after it started,
by compiled (mypyc) code too, whatever the garbage collector tracks; allocations made
before the measurement began (imports, the test's fixtures) are not traced at all.
Logging is routed to a handler that formats each record and drops it: pytest keeps every
captured record of a test, which would otherwise look like a leak of the code that logs.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

# Allocation sites shown when a test fails, the largest growth first.
_SHOWN = 12
# Frames kept per allocation. One is what keeps the tests fast (tracemalloc's cost grows
# with the frames it walks); TURNOUT_LEAK_FRAMES=8 shows more of where a leak comes from
# (with TURNOUT_PURE_PYTHON=1, the lines of the data plane's source, not the caller's).
_FRAMES = int(os.environ.get("TURNOUT_LEAK_FRAMES", "1"))
# Allocations by tracemalloc's own Python code (the snapshot objects) are not the test's.
_IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    tracemalloc.Filter(False, "<unknown>"),
)


@dataclass(frozen=True)
class Growth:
    """What ``steps`` runs of an operation left allocated after a warm-up."""

    what: str
    steps: int
    bytes: int  # retained bytes (negative: more was freed than allocated)
    before: tracemalloc.Snapshot = field(repr=False)
    after: tracemalloc.Snapshot = field(repr=False)

    @property
    def bytes_per_step(self) -> float:
        return self.bytes / self.steps

    def summary(self) -> str:
        return (
            f"{self.what}: {self.bytes} bytes retained by {self.steps} steps "
            f"({self.bytes_per_step:.2f} bytes per step)"
        )

    def report(self) -> str:
        """The summary and where the retained blocks were allocated, largest first
        (comparing the snapshots is slow: for a failure message)."""
        after = self.after.filter_traces(_IGNORED)
        stats = after.compare_to(self.before.filter_traces(_IGNORED), "traceback")
        stats.sort(key=lambda stat: stat.size_diff, reverse=True)
        sites = [self.summary()]
        for stat in stats[:_SHOWN]:
            if stat.size_diff <= 0:
                break
            where = " <- ".join(f"{f.filename}:{f.lineno}" for f in reversed(stat.traceback))
            sites.append(f"  +{stat.size_diff} B in {stat.count_diff:+d} blocks: {where}")
        return "\n".join(sites)


class _DroppingHandler(logging.Handler):
    """Formats every record (as a real handler would) and keeps none of them."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


@contextlib.contextmanager
def quiet_logging(name: str = "turnout") -> Iterator[None]:
    """Records of logger ``name`` are formatted and dropped, never kept (see module doc)."""
    logger = logging.getLogger(name)
    handler = _DroppingHandler()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = propagate
        logger.removeHandler(handler)


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """Trace allocations inside the block (unless already tracing). ``retained`` traces
    by itself; a test enters this earlier when the steps replace objects made before
    (a first configuration): untraced, their replacements would count as growth."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(_FRAMES)
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


Collect = Callable[[], object]


class _Checkpoints:
    """Traced size and snapshot after the warm-up, then after the steps."""

    def __init__(self, collect: Collect) -> None:
        self.collect = collect
        self.sizes: list[int] = []
        self.snapshots: list[tracemalloc.Snapshot] = []

    def mark(self) -> None:
        self.collect()
        if self.snapshots:
            self.sizes.append(tracemalloc.get_traced_memory()[0])
            self.snapshots.append(tracemalloc.take_snapshot())
        else:  # the snapshot first: its own few allocations belong to the baseline
            self.snapshots.append(tracemalloc.take_snapshot())
            self.sizes.append(tracemalloc.get_traced_memory()[0])

    def growth(self, what: str, steps: int) -> Growth:
        before, after = self.snapshots
        return Growth(what, steps, self.sizes[1] - self.sizes[0], before, after)


def retained(
    what: str,
    step: Callable[[], object],
    *,
    warmup: int,
    steps: int,
    collect: Collect = gc.collect,
) -> Growth:
    """Memory left allocated by ``steps`` calls of ``step`` after ``warmup`` calls;
    ``collect`` runs the full garbage collection before each measurement."""
    checkpoints = _Checkpoints(collect)
    with tracing(), quiet_logging():
        for count in (warmup, steps):
            for _ in range(count):
                step()  # one line for both phases: the same tracebacks for the same work
            checkpoints.mark()
    return checkpoints.growth(what, steps)


async def retained_async(
    what: str,
    step: Callable[[], Awaitable[object]],
    *,
    warmup: int,
    steps: int,
    collect: Collect = gc.collect,
) -> Growth:
    """``retained`` for an operation that awaits (sockets, configuration applies)."""
    checkpoints = _Checkpoints(collect)
    with tracing(), quiet_logging():
        for count in (warmup, steps):
            for _ in range(count):
                await step()
            checkpoints.mark()
    return checkpoints.growth(what, steps)


def assert_no_leak(growth: Growth, *, floor: int = 4096, per_step: float = 2.0) -> None:
    """Fail unless the steps retained less than ``floor`` bytes or ``per_step`` bytes per
    step, whichever is more. What is no leak stays constant however many steps run (a
    dict or free list resized at some point in the window); a leak grows with them, by
    at least a pointer (8 bytes) per step when one small thing is kept each time."""
    print(growth.summary())  # shown with pytest -s
    assert growth.bytes < max(floor, per_step * growth.steps), growth.report()


def open_fds() -> int:
    """File descriptors open in this process (Linux: /proc/self/fd), -1 where unknown."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1
