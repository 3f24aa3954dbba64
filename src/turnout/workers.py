"""workers: the control plane's side of the data-plane worker processes.

Place in the pipeline: :class:`turnout.runtime.Standalone` hands every new ``ir.Config``
to a :class:`WorkerSet` (with ``turnout run --workers N``, N >= 1) instead of an
in-process :class:`turnout.dataplane.DataPlane`. Each worker is a separate Python process
running :mod:`turnout.dataplane.worker`; the admin API and the file watcher stay here.

Theory of operation
-------------------
* **Processes.** Each worker is started as ``python -m turnout.dataplane.worker`` with
  one end of a socketpair as its control channel (it never imports graph or sources).
  Its listening sockets use SO_REUSEPORT, so every worker binds the same addresses and
  the kernel spreads new connections over them.
* **Versions.** :meth:`WorkerSet.apply` sends the configuration (IR as msgpack) with its
  version to every live worker (to a worker that has the previous one, only what
  changed: :mod:`turnout.ir.delta`; a one-route change at 5,000 routes is then a few
  KB instead of 2 MB to encode, decode and allocate), then waits until each of them answered ``Applied`` for
  that version (workers apply in order, so an answer for version v means v is served).
  Only then does it return the merged per-listener results, and only then does the
  caller publish status. So a listener reports Programmed=True, and a new route reports
  Accepted, only once every worker serves it: traffic to it cannot fail after that.
* **Merging.** A listener is served when every worker that answered serves it; the
  first error any worker reported (for example a bind error: PortUnavailable) wins.
* **Restarts.** A worker that exits while we are not stopping is logged, counted
  (``turnout_worker_restarts_total`` in /metrics) and started again with the current
  configuration, after a back-off that grows while workers keep dying young. A worker
  that does not answer within ``apply_timeout`` is killed, and so restarted. When a
  restarted worker's results differ from the published ones (a port it cannot bind),
  ``on_results_changed`` is called so status can be recomputed.
* **Counters.** Each worker sends a snapshot of its data-plane counters every second
  (``Stats``, see :mod:`turnout.dataplane.worker`); :meth:`WorkerSet.stats_snapshot` sums
  the last one of each live worker with ``retired``, the sum of the last snapshots of
  workers that exited. So the totals in /metrics never go down when a worker dies and
  is restarted (its replacement counts from zero on top); a worker killed outright
  loses at most its last second of counts.
* **Stopping.** :meth:`WorkerSet.close` sends SIGTERM to every worker (each drains: stops
  accepting, finishes requests in flight up to its drain timeout, exits 0) and waits for
  them; stragglers are killed a few seconds after the drain deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import prometheus_client

from turnout import ir
from turnout.dataplane import snapshot
from turnout.dataplane.limits import DEFAULT_LIMITS, Limits
from turnout.dataplane.snapshot import Snapshot
from turnout.dataplane.worker import (
    Applied,
    Apply,
    ApplyDelta,
    Init,
    Stats,
    encode,
    read_message,
)
from turnout.ir import delta as ir_delta

log = logging.getLogger("turnout.workers")

WORKER_RESTARTS = prometheus_client.Counter(
    "turnout_worker_restarts", "Data-plane worker processes restarted after they exited"
)
WORKERS_LIVE = prometheus_client.Gauge("turnout_workers", "Data-plane worker processes running")

_YOUNG = 2.0  # a worker that dies younger than this (seconds) makes the next start wait
_MAX_BACKOFF = 5.0
_KILL_GRACE = 5.0  # after the drain deadline, before stragglers are killed

NO_WORKER = "no data-plane worker process is running"


@dataclass
class WorkerProcess:
    """One worker process and what it last told us."""

    index: int
    process: asyncio.subprocess.Process
    writer: asyncio.StreamWriter
    started: float
    applied: int = -1  # the last configuration version it answered for
    sent: int = -1  # the last configuration version sent to it
    results: dict[str, str | None] = field(default_factory=dict)
    stats: Snapshot | None = None  # the last counters it sent
    reader_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, frame: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame)


class WorkerSet:
    """N data-plane worker processes that serve one configuration version together."""

    def __init__(
        self,
        count: int,
        *,
        limits: Limits = DEFAULT_LIMITS,
        drain_timeout: float = 5.0,
        log_level: str = "info",
        apply_timeout: float = 30.0,
        on_results_changed: Callable[[dict[str, str | None]], None] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("a WorkerSet needs at least one worker")
        self.count = count
        self.limits = limits
        self.drain_timeout = drain_timeout
        self.log_level = log_level
        self.apply_timeout = apply_timeout
        self.on_results_changed = on_results_changed
        self.workers: dict[int, WorkerProcess] = {}  # by index
        self.restarts = 0
        self.results: dict[str, str | None] = {}  # last merged (published) results
        self._config: ir.Config | None = None  # the configuration being served
        self._current: Apply | None = None  # its full message, once encoded
        self._changed = asyncio.Condition()
        self._stopping = False
        self._backoff = 0.0
        self._respawns: set[asyncio.Task[None]] = set()
        self.retired = Snapshot()  # what workers that exited had counted (see stats_snapshot)

    def stats_snapshot(self) -> Snapshot:
        """Data-plane counters over every worker, past and present (for /metrics)."""
        live = [w.stats for w in self.workers.values() if w.stats is not None]
        return snapshot.total([self.retired, *live])

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers.values()]

    async def start(self) -> None:
        for index in range(self.count):
            await self._spawn(index)

    # --- configurations ------------------------------------------------------------

    async def apply(self, config: ir.Config) -> dict[str, str | None]:
        """Serve ``config`` in every worker; per listener, None or why it is not served.

        A worker that holds the previous configuration gets only what changed
        (turnout.ir.delta); one that does not (just started) gets all of it."""
        previous, self._config = self._config, config
        self._current = None  # the full message, encoded when a worker needs it
        delta: bytes | None = None
        for worker in list(self.workers.values()):
            if previous is not None and worker.sent == previous.version:
                if delta is None:
                    delta = encode(ApplyDelta(config.version, ir_delta.diff(previous, config)))
                worker.send(delta)
            else:
                worker.send(encode(self._full()))
            worker.sent = config.version
        await self._wait_applied(config.version)
        self.results = self._merge(config, config.version)
        return self.results

    def _full(self) -> Apply:
        """The current configuration as a whole (for a worker that has no other)."""
        assert self._config is not None
        if self._current is None:
            self._current = Apply(self._config.version, ir.to_msgpack(self._config))
        return self._current

    async def _wait_applied(self, version: int) -> None:
        def done() -> bool:
            return all(w.applied >= version for w in self.workers.values())

        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
        # that races with the inner wait finishing, and stop() cancels reloads.
        try:
            async with asyncio.timeout(self.apply_timeout), self._changed:
                await self._changed.wait_for(done)
        except TimeoutError:
            for worker in list(self.workers.values()):
                if worker.applied < version:
                    log.error(
                        "worker %d (pid %d) did not apply configuration %d within %.0f s; "
                        "killing it",
                        worker.index,
                        worker.pid,
                        version,
                        self.apply_timeout,
                    )
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()

    def _merge(self, config: ir.Config, version: int) -> dict[str, str | None]:
        answered = [w for w in self.workers.values() if w.applied == version]
        results: dict[str, str | None] = {}
        for gateway in config.gateways:
            for listener in gateway.listeners:
                if not answered:
                    results[listener.name] = NO_WORKER
                    continue
                errors = [w.results.get(listener.name) for w in answered]
                results[listener.name] = next((e for e in errors if e), None)
        return results

    # --- processes -----------------------------------------------------------------

    async def _spawn(self, index: int) -> None:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "turnout.dataplane.worker",
                "--fd",
                str(theirs.fileno()),
                "--index",
                str(index),
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        loop = asyncio.get_running_loop()
        worker = WorkerProcess(index, process, writer, started=loop.time())
        worker.send(encode(Init(self.limits, self.drain_timeout, self.log_level)))
        if self._config is not None:
            worker.send(encode(self._full()))
            worker.sent = self._config.version
        self.workers[index] = worker
        WORKERS_LIVE.set(len(self.workers))
        worker.reader_task = loop.create_task(self._listen(worker, reader))
        log.info("worker %d started (pid %d)", index, process.pid)

    async def _listen(self, worker: WorkerProcess, reader: asyncio.StreamReader) -> None:
        """Read a worker's answers until it goes away, then restart it."""
        try:
            while True:
                message = await read_message(reader)
                if message is None:
                    break
                if isinstance(message, Applied):
                    await self._applied(worker, message)
                elif isinstance(message, Stats):
                    worker.stats = message.snapshot
        except (OSError, ValueError) as exc:
            log.error(
                "worker %d (pid %d): control channel failed: %s", worker.index, worker.pid, exc
            )
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
        code = await worker.process.wait()
        worker.writer.close()
        async with self._changed:
            if self.workers.get(worker.index) is worker:
                del self.workers[worker.index]
            if worker.stats is not None:  # in the same step as leaving self.workers
                self.retired = snapshot.total([self.retired, worker.stats], gauges=False)
                worker.stats = None
            WORKERS_LIVE.set(len(self.workers))
            self._changed.notify_all()
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        young = loop.time() - worker.started < _YOUNG
        self._backoff = min(_MAX_BACKOFF, max(0.1, self._backoff * 2)) if young else 0.0
        self.restarts += 1
        WORKER_RESTARTS.inc()
        log.error(
            "worker %d (pid %d) exited with status %s; restarting it with configuration %s",
            worker.index,
            worker.pid,
            code,
            self._config.version if self._config is not None else "none",
        )
        task = loop.create_task(self._respawn(worker.index, self._backoff))
        self._respawns.add(task)
        task.add_done_callback(self._respawns.discard)

    async def _respawn(self, index: int, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self._stopping:
            try:
                await self._spawn(index)
            except OSError:
                log.exception("restarting worker %d failed; retrying", index)
                await asyncio.sleep(_MAX_BACKOFF)
                await self._respawn(index, 0.0)

    async def _applied(self, worker: WorkerProcess, message: Applied) -> None:
        async with self._changed:
            worker.applied = message.version
            worker.results = message.results
            self._changed.notify_all()
        current = self._config
        if current is None or message.version != current.version or not self.results:
            return
        # A restarted worker caught up: its results may differ from what was published.
        merged = {name: error or message.results.get(name) for name, error in self.results.items()}
        if merged != self.results and self.on_results_changed is not None:
            self.results = merged
            self.on_results_changed(merged)

    async def close(self) -> None:
        """SIGTERM every worker (each drains), wait for them, kill stragglers."""
        self._stopping = True
        for task in list(self._respawns):
            task.cancel()
        workers = list(self.workers.values())
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        deadline = self.drain_timeout + _KILL_GRACE
        for worker in workers:
            try:
                async with asyncio.timeout(deadline):
                    await worker.process.wait()
            except TimeoutError:
                log.error("worker %d (pid %d) did not exit; killing it", worker.index, worker.pid)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
        for worker in workers:
            if worker.reader_task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader_task
            if worker.process.returncode:
                log.warning(
                    "worker %d (pid %d) exited with status %s",
                    worker.index,
                    worker.pid,
                    worker.process.returncode,
                )
