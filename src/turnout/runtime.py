"""Standalone mode: watch files, rebuild graph/status/IR, program the data plane.

This is the glue between the pure pipeline (sources -> graph -> status/IR) and the
processes that serve traffic and the admin API. With ``workers`` >= 1 the data plane
runs in that many worker processes (:mod:`turnout.workers`); with 0 it runs in this
process. Either way, status is computed from what the data plane answered for the
configuration, so it is published only once that configuration is served.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import ipaddress
import logging
import os
import signal
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

from turnout import DEFAULT_CONTROLLER_NAME, graph, ir
from turnout.admin import dataplane_metrics
from turnout.admin.server import start_admin
from turnout.dataplane import native
from turnout.dataplane.limits import DEFAULT_LIMITS, Limits
from turnout.features import supported_features
from turnout.graph.memo import RuleMemo
from turnout.graph.model import Graph, Key
from turnout.graph.release import release_replaced
from turnout.ir import build as ir_build
from turnout.ir.reuse import BuildCache
from turnout.sources.files import FileSource
from turnout.sources.loadresult import LoadResult
from turnout.sources.snapshot import Snapshot
from turnout.sources.watch import watch_paths
from turnout.status.compute import DataPlaneFeedback, RouteStatusCache, StatusClock, compute
from turnout.util.collector import (
    IN_PROCESS_EVERY_RELOADS,
    IN_PROCESS_IDLE_DELAY,
    ReloadCollector,
    collector_paused,
    end_pause_for_start,
)
from turnout.workers import WorkerSet

if TYPE_CHECKING:
    from turnout.dataplane.server import DataPlane

log = logging.getLogger("turnout")

Pool = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RunOptions:
    paths: tuple[Path, ...]
    admin_host: str = "127.0.0.1"
    admin_port: int = 9901
    address_pool: Pool = field(default_factory=lambda: ipaddress.ip_network("127.0.0.0/24"))
    port_offset: int = 0
    controller_name: str = DEFAULT_CONTROLLER_NAME
    # Data-plane worker processes; 0 serves in the control-plane process itself.
    workers: int = 0
    limits: Limits = DEFAULT_LIMITS
    drain_timeout: float = 5.0  # seconds requests in flight get on SIGTERM
    log_level: str = "info"
    # Seconds between full re-reads of the files (0: never). A safety net: reloads read
    # only what the watcher reports, so an event it lost (an inotify queue overflow, a
    # file system that reports nothing) would otherwise go unnoticed until that file
    # changes again or SIGHUP. About 0.1 s of CPU at 5,000 routes when nothing changed.
    resync_interval: float = 60.0


@dataclass(frozen=True)
class CheckResult:
    """What `turnout check` computes offline."""

    items: list[dict[str, Any]]  # Kubernetes-shaped objects with .status filled in
    errors: list[str]  # load/validation errors, each naming file, document, object, field
    warnings: list[str]  # unknown fields and similar
    ignored: list[
        str
    ]  # objects of kinds turnout does not use ("file#doc: apiVersion kind ns/name")


@dataclass(frozen=True)
class AddressAssignment:
    """The allocator's answer: the address each Gateway is served on, and why not more.

    ``unusable`` names, per Gateway, each requested static address it does not get, with
    the reason (status: ``Programmed=False/AddressNotUsable``).
    """

    addresses: dict[Key, str | None]
    unusable: dict[Key, tuple[str, ...]]


class AddressAllocator:
    """Hands out pool addresses to Gateways, as a LoadBalancer controller would.

    ``assign`` takes, per Gateway, the static IPAddress values of its ``spec.addresses``
    (empty: "pick one for me"). A Gateway is served on one address: the first requested
    value that is in the pool and free, else (when it requests none) the lowest free pool
    address not requested by any Gateway. A Gateway keeps its address for as long as it
    exists and still asks for it, so reloads never move a live Gateway; among new
    claimants of one static address the first in key order wins. Keys are processed in
    sorted order, so a fresh process assigns the same addresses to the same Gateways.
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._assigned: dict[Key, str] = {}

    def assign(self, requests: Mapping[Key, Sequence[str]]) -> AddressAssignment:
        wanted = {key: [_canonical_ip(v) for v in values] for key, values in requests.items()}
        # Keep what each Gateway holds while it still exists and still asks for it.
        self._assigned = {
            key: address
            for key, address in self._assigned.items()
            if key in wanted and (not wanted[key] or address in wanted[key])
        }
        holders = {address: key for key, address in self._assigned.items()}
        unusable: dict[Key, tuple[str, ...]] = {}
        # Static requests first, so that automatic picks never take a requested address.
        for key in sorted(k for k, values in wanted.items() if values):
            problems = []
            for value in wanted[key]:
                problem = self._claim(key, value, holders)
                if problem is not None:
                    problems.append(problem)
            if problems:
                unusable[key] = tuple(problems)
        requested = {value for values in wanted.values() for value in values}
        free = (
            str(host)
            for host in self._pool.hosts()
            if str(host) not in holders and str(host) not in requested
        )
        addresses: dict[Key, str | None] = {}
        for key in sorted(wanted):
            if key not in self._assigned and not wanted[key]:
                address = next(free, None)
                if address is not None:
                    self._assigned[key] = address
                    holders[address] = key
            addresses[key] = self._assigned.get(key)
        return AddressAssignment(addresses, unusable)

    def _claim(self, key: Key, value: str, holders: dict[str, Key]) -> str | None:
        """Give ``value`` to ``key`` if it can have it; else say why not."""
        held = self._assigned.get(key)
        if held == value:
            return None
        if not _in_pool(value, self._pool):
            return f"{value} is not a host address of the address pool {self._pool}"
        holder = holders.get(value)
        if holder is not None:
            return f"{value} is used by Gateway {holder[0]}/{holder[1]}"
        if held is not None:
            return f"{value}: turnout serves a Gateway on one address, and this one has {held}"
        self._assigned[key] = value
        holders[value] = key
        return None


def _canonical_ip(value: str) -> str:
    """One spelling per address (``::0:1`` and ``::1`` are the same address)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value  # validation rejects these; _in_pool then says it is unusable


def _in_pool(value: str, pool: Pool) -> bool:
    """A usable host address of ``pool`` (not its network or broadcast address)."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if address.version != pool.version or address not in pool:
        return False
    if pool.num_addresses <= 2:
        return True  # /31, /32 (and IPv6 /127, /128): every address is a host
    if address == pool.network_address:
        return False
    return address.version == 6 or address != pool.broadcast_address


def requested_addresses(snapshot: Snapshot, keys: Sequence[Key]) -> dict[Key, list[str]]:
    """Static IPAddress values per Gateway, the allocator's input.

    Other address types make the Gateway Accepted=False/UnsupportedAddress (graph), and
    such a Gateway must not hold an address: it asks for nothing here and is skipped.
    """
    requests: dict[Key, list[str]] = {}
    for key in keys:
        spec_addresses = snapshot.gateways[key].spec.addresses
        if any(a.type != "IPAddress" for a in spec_addresses):
            continue
        requests[key] = [a.value for a in spec_addresses if a.value is not None]
    return requests


@dataclass
class Pipeline:
    """sources -> Snapshot -> graph -> (status, IR), shared by `run` and `check`."""

    options: RunOptions
    source: FileSource = field(init=False)
    allocator: AddressAllocator = field(init=False)
    clock: StatusClock = field(default_factory=StatusClock)
    # Route status items of unchanged routes are reused (with this clock only).
    status_cache: RouteStatusCache = field(default_factory=RouteStatusCache)
    # Rule resolution, IR rules and virtual hosts of unchanged routes are reused.
    rule_memo: RuleMemo = field(default_factory=RuleMemo)
    ir_cache: BuildCache = field(default_factory=BuildCache)
    # The last Graph and what it was built from, for patching it (graph/incremental.py).
    graph_basis: graph.Basis | None = None
    version: int = 0
    # Signs session persistence tokens in every worker (ir.Config.session_key).
    session_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())

    def __post_init__(self) -> None:
        self.source = FileSource(list(self.options.paths))
        self.allocator = AddressAllocator(self.options.address_pool)

    def compile(
        self, changed_paths: Collection[Path] | None = None
    ) -> tuple[LoadResult, Graph, ir.Config]:
        """Load (only ``changed_paths`` when given: what the watcher reported), build
        or patch the graph, build the IR. The Graph of the previous call may be
        consumed by a patch: release it with ``release_replaced``."""
        loaded = self.source.load(changed_paths)
        snapshot = loaded.snapshot
        controller = self.options.controller_name
        keys = graph.gateways_of_our_classes(snapshot, controller)
        assignment = self.allocator.assign(requested_addresses(snapshot, keys))
        # Cleared first: if anything below fails, the next call builds from scratch.
        basis, self.graph_basis = self.graph_basis, None
        built, self.graph_basis = graph.update(
            snapshot,
            loaded.changed,
            basis,
            controller_name=controller,
            addresses=assignment.addresses,
            unusable_addresses=assignment.unusable,
            memo=self.rule_memo,
        )
        self.version += 1
        config = ir_build.build(
            built,
            port_offset=self.options.port_offset,
            version=self.version,
            cache=self.ir_cache,
            session_key=self.session_key,
        )
        return loaded, built, config

    def status(
        self, loaded: LoadResult, built: Graph, feedback: DataPlaneFeedback
    ) -> list[dict[str, Any]]:
        return compute(
            loaded.snapshot,
            built,
            feedback,
            self.clock,
            supported_features(),
            loaded.statuses(),
            cache=self.status_cache,
        )


def check(
    paths: list[Path] | tuple[Path, ...],
    *,
    controller_name: str = DEFAULT_CONTROLLER_NAME,
    address_pool: Pool | None = None,
    port_offset: int = 0,
) -> CheckResult:
    """Compute status offline, predicting that every listener binds."""
    options = RunOptions(
        paths=tuple(paths), controller_name=controller_name, port_offset=port_offset
    )
    if address_pool is not None:
        options = dataclasses.replace(options, address_pool=address_pool)
    pipeline = Pipeline(options)
    loaded, built, _ = pipeline.compile()
    items = pipeline.status(loaded, built, DataPlaneFeedback(applied=True))
    return CheckResult(
        items=items,
        errors=[str(e) for e in loaded.errors],
        warnings=[str(w) for w in loaded.warnings],
        ignored=[str(i) for i in loaded.ignored],
    )


class Standalone:
    """File watcher, control plane and admin API; the data plane in-process or in workers."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.pipeline = Pipeline(options)
        # When garbage collection may stall the loop (see turnout.util.collector).
        self.collector = (
            ReloadCollector()
            if options.workers >= 1
            else ReloadCollector(IN_PROCESS_IDLE_DELAY, IN_PROCESS_EVERY_RELOADS)
        )
        self.dataplane: DataPlane | None = None  # the in-process one (workers == 0)
        self.workers: WorkerSet | None = None
        if options.workers >= 1:
            self.workers = WorkerSet(
                options.workers,
                limits=options.limits,
                drain_timeout=options.drain_timeout,
                log_level=options.log_level,
                on_results_changed=self._results_changed,
            )
        else:
            # Imported only here: with workers the control plane never loads the servers
            # (a tenth of its start-up).
            from turnout.dataplane.server import DataPlane

            self.dataplane = DataPlane(options.limits)
        # /metrics: the data plane's counters, from the workers or from this process.
        source = self.workers or self.dataplane
        assert source is not None
        dataplane_metrics.COLLECTOR.source = source.stats_snapshot
        self._compiled: tuple[LoadResult, Graph] | None = None
        self._stopping = False
        self._items: list[dict[str, Any]] = []
        self._config = ir.Config()
        self._ready = False
        self._reload_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._admin: asyncio.AbstractServer | None = None
        self._reported: set[str] = set()
        self._errors: list[str] = []

    # --- AdminProvider -------------------------------------------------------------
    def healthy(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._ready

    def status_items(self) -> list[dict[str, Any]]:
        return self._items

    def load_errors(self) -> list[str]:
        return self._errors

    def config_json(self) -> bytes:
        return ir.to_json(self._config)

    # --- lifecycle -----------------------------------------------------------------
    def gateway_addresses(self) -> dict[str, str]:
        return {gw.name: gw.address for gw in self._config.gateways}

    async def start(self) -> None:
        # The watcher before the first load: a file changed while (or just after) the
        # first configuration loads is then reported and reloaded, never lost between
        # the load and the start of the watch. The task's first step sets up the
        # watches (watchfiles does that synchronously before its first await).
        self._tasks.append(asyncio.create_task(self._watch()))
        if self.options.resync_interval > 0:
            self._tasks.append(asyncio.create_task(self._resync(self.options.resync_interval)))
        await asyncio.sleep(0)
        if self.workers is not None:
            await self.workers.start()
        await self.reload()
        end_pause_for_start()  # cli.run paused garbage collection for the start-up
        self._admin = await start_admin(self.options.admin_host, self.options.admin_port, self)

    async def stop(self) -> None:
        """Stop watching, drain the data plane (up to drain_timeout), close the admin API."""
        self._ready = False
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a watcher that does not stop must not keep the drain from running.
            _, pending = await asyncio.wait(self._tasks, timeout=2.0)
            if pending:
                log.warning("the file watcher did not stop; shutting down anyway")
        async with self._reload_lock:  # a reload in flight finishes first
            self.collector.close()
            if self.workers is not None:
                await self.workers.close()
            elif self.dataplane is not None:
                await self.dataplane.close(self.options.drain_timeout)
        if self._admin is not None:
            self._admin.close()
            await self._admin.wait_closed()

    async def _apply(self, config: ir.Config) -> dict[str, str | None]:
        if self.workers is not None:
            return await self.workers.apply(config)
        assert self.dataplane is not None  # one of the two exists (__init__)
        return await self.dataplane.apply(config)

    def _results_changed(self, results: dict[str, str | None]) -> None:
        """A restarted worker serves less than the others did: recompute status."""
        if self._compiled is None or self._reload_lock.locked():
            # A reload in flight publishes status itself once every worker (the
            # restarted one too) serves its configuration; its compile may have
            # patched the Graph of _compiled already (graph/incremental.py).
            return
        loaded, built = self._compiled
        errors = {name: err for name, err in results.items() if err}
        for name, err in errors.items():
            log.error("listener %s: %s", name, err)
        self._items = self.pipeline.status(loaded, built, DataPlaneFeedback(True, errors))

    async def reload(
        self, changed_paths: Collection[Path] | None = None, *, resync: bool = False
    ) -> None:
        """Compile and serve the files; ``changed_paths``: only these changed since the
        last reload (what the watcher reported); None: look at everything. ``resync``: a
        periodic full re-read, logged only when it found a change."""
        # No garbage collection in the middle of a reload (turnout.util.collector).
        # Readiness stays True once a configuration is served: a reload keeps serving the
        # last one until every worker serves the next, so it is no reason to be unready.
        async with self._reload_lock, collector_paused():
            started = time.perf_counter()
            try:
                loaded, built, config = self.pipeline.compile(changed_paths)
            except Exception:  # a bug must not take the gateway down: keep serving
                log.exception("rebuilding the configuration failed; keeping the last one")
                return
            self._log_problems(loaded)
            self._errors = [str(e) for e in loaded.errors]
            compiled = time.perf_counter()
            results = await self._apply(config)
            applied = time.perf_counter()
            errors = {name: err for name, err in results.items() if err}
            for name, err in errors.items():
                log.error("listener %s: %s", name, err)
            # Published only now: every worker serves `config` (see turnout.workers).
            self._items = self.pipeline.status(loaded, built, DataPlaneFeedback(True, errors))
            previous, self._compiled = self._compiled, (loaded, built)
            if previous is not None:
                release_replaced(previous[1], built)  # freed now, not by a full collection
            self._config = config
            self._ready = True
            log.debug(
                "reload of %s: compiled in %.1f ms, served after %.1f ms, status %.1f ms",
                "everything" if changed_paths is None else f"{len(changed_paths)} paths",
                (compiled - started) * 1000,
                (applied - compiled) * 1000,
                (time.perf_counter() - applied) * 1000,
            )
            (log.debug if resync and not loaded.changed else log.info)(
                "configuration %d applied: %d gateways, %d routes",
                config.version,
                len(config.gateways),
                len(built.routes) + len(built.grpc_routes),
            )
            self.collector.reloaded()

    def _log_problems(self, loaded: LoadResult) -> None:
        current = {f"error: {e}" for e in loaded.errors} | {
            f"warning: {w}" for w in loaded.warnings
        }
        for line in sorted(current - self._reported):
            (log.error if line.startswith("error") else log.warning)("%s", line)
        self._reported = current

    def stopping(self) -> bool:
        return self._stopping

    async def _resync(self, interval: float) -> None:
        """Re-read everything every ``interval`` seconds (see RunOptions.resync_interval)."""
        while not self._stopping:
            await asyncio.sleep(interval)
            if not self._stopping:
                await self.reload(resync=True)

    async def _watch(self) -> None:
        """Reload on every batch of changes; a failing watcher is restarted."""
        while not self._stopping:
            try:
                async for changes in watch_paths(list(self.options.paths)):
                    if self.stopping():  # in case a cancellation was lost on the way
                        return
                    await self.reload(changes)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watching %s failed; retrying in 1 s", self.options.paths)
            await asyncio.sleep(1.0)
            await self.reload()


def run_standalone(options: RunOptions) -> None:
    """Run until SIGINT or SIGTERM (then drain and return); SIGHUP re-reads the files."""
    uvloop.install()
    asyncio.run(_serve(options))


async def _serve(options: RunOptions) -> None:
    standalone = Standalone(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(standalone.reload()))
    try:
        await standalone.start()
    except BaseException:  # e.g. the admin port is taken: do not leave workers behind
        await standalone.stop()
        raise
    log.info(
        "turnout is serving (%s, %s); admin API on http://%s:%d",
        f"{options.workers} worker processes" if options.workers else "in-process data plane",
        native.mode(),
        options.admin_host,
        options.admin_port,
    )
    old = native.stale()
    if old and native.mode() == "compiled":
        log.warning("compiled data-plane modules older than their source: %s", ", ".join(old))
    await stop.wait()
    log.info("draining (up to %.1f s) and shutting down", options.drain_timeout)
    await standalone.stop()
