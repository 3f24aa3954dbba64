"""Standalone mode: watch files, rebuild graph/status/IR, program the data plane.

This is the glue between the pure pipeline (sources -> graph -> status/IR) and the
processes that serve traffic and the admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from turnout import DEFAULT_CONTROLLER_NAME, graph, ir
from turnout.admin.server import start_admin
from turnout.dataplane.server import DataPlane
from turnout.features import supported_features
from turnout.graph.model import Graph
from turnout.ir import build as ir_build
from turnout.sources.files import FileSource, LoadResult
from turnout.sources.watch import watch_paths
from turnout.status.compute import DataPlaneFeedback, StatusClock, compute

log = logging.getLogger("turnout")


@dataclass(frozen=True)
class RunOptions:
    paths: tuple[Path, ...]
    admin_host: str = "127.0.0.1"
    admin_port: int = 9901
    address_pool: ipaddress.IPv4Network | ipaddress.IPv6Network = field(
        default_factory=lambda: ipaddress.ip_network("127.0.0.0/24")
    )
    port_offset: int = 0
    controller_name: str = DEFAULT_CONTROLLER_NAME


@dataclass(frozen=True)
class CheckResult:
    """What `turnout check` computes offline."""

    items: list[dict[str, Any]]  # Kubernetes-shaped objects with .status filled in
    errors: list[str]  # load/validation errors, each naming file, document, object, field
    warnings: list[str]  # unknown fields and similar
    ignored: list[
        str
    ]  # objects of kinds turnout does not use ("file#doc: apiVersion kind ns/name")


class AddressAllocator:
    """Hands out pool addresses to Gateways, as a LoadBalancer controller would.

    A Gateway keeps its address for as long as it exists; new Gateways get the lowest
    free address. Keys are processed in sorted order, so a fresh process assigns the
    same addresses to the same set of Gateways.
    """

    def __init__(self, pool: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        self._pool = pool
        self._assigned: dict[tuple[str, str], str] = {}

    def assign(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        wanted = set(keys)
        self._assigned = {k: a for k, a in self._assigned.items() if k in wanted}
        used = set(self._assigned.values())
        free = (str(host) for host in self._pool.hosts() if str(host) not in used)
        result: dict[tuple[str, str], str | None] = {}
        for key in sorted(wanted):
            if key not in self._assigned:
                address = next(free, None)
                if address is None:
                    result[key] = None
                    continue
                self._assigned[key] = address
            result[key] = self._assigned[key]
        return result


@dataclass
class Pipeline:
    """sources -> Snapshot -> graph -> (status, IR), shared by `run` and `check`."""

    options: RunOptions
    source: FileSource = field(init=False)
    allocator: AddressAllocator = field(init=False)
    clock: StatusClock = field(default_factory=StatusClock)
    version: int = 0

    def __post_init__(self) -> None:
        self.source = FileSource(list(self.options.paths))
        self.allocator = AddressAllocator(self.options.address_pool)

    def compile(self) -> tuple[LoadResult, Graph, ir.Config]:
        loaded = self.source.load()
        snapshot = loaded.snapshot
        controller = self.options.controller_name
        addresses = self.allocator.assign(graph.gateways_of_our_classes(snapshot, controller))
        built = graph.build(snapshot, controller_name=controller, addresses=addresses)
        self.version += 1
        config = ir_build.build(built, port_offset=self.options.port_offset, version=self.version)
        return loaded, built, config

    def status(
        self, loaded: LoadResult, built: Graph, feedback: DataPlaneFeedback
    ) -> list[dict[str, Any]]:
        return compute(
            loaded.snapshot, built, feedback, self.clock, supported_features(), loaded.statuses()
        )


def check(
    paths: list[Path] | tuple[Path, ...],
    *,
    controller_name: str = DEFAULT_CONTROLLER_NAME,
    address_pool: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None,
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
    """One process: file watcher, control plane, data plane and admin API."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.pipeline = Pipeline(options)
        self.dataplane = DataPlane()
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
        await self.reload()
        self._admin = await start_admin(self.options.admin_host, self.options.admin_port, self)
        self._tasks.append(asyncio.create_task(self._watch()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._admin is not None:
            self._admin.close()
            await self._admin.wait_closed()
        await self.dataplane.close()

    async def reload(self) -> None:
        async with self._reload_lock:
            self._ready = False
            try:
                loaded, built, config = self.pipeline.compile()
            except Exception:  # a bug must not take the gateway down: keep serving
                log.exception("rebuilding the configuration failed; keeping the last one")
                self._ready = True
                return
            self._log_problems(loaded)
            self._errors = [str(e) for e in loaded.errors]
            results = await self.dataplane.apply(config)
            errors = {name: err for name, err in results.items() if err}
            for name, err in errors.items():
                log.error("listener %s: %s", name, err)
            self._items = self.pipeline.status(loaded, built, DataPlaneFeedback(True, errors))
            self._config = config
            self._ready = True
            log.info(
                "configuration %d applied: %d gateways, %d routes",
                config.version,
                len(config.gateways),
                len(built.routes),
            )

    def _log_problems(self, loaded: LoadResult) -> None:
        current = {f"error: {e}" for e in loaded.errors} | {
            f"warning: {w}" for w in loaded.warnings
        }
        for line in sorted(current - self._reported):
            (log.error if line.startswith("error") else log.warning)("%s", line)
        self._reported = current

    async def _watch(self) -> None:
        """Reload on every batch of changes; a failing watcher is restarted."""
        while True:
            try:
                async for _changes in watch_paths(list(self.options.paths)):
                    await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watching %s failed; retrying in 1 s", self.options.paths)
            await asyncio.sleep(1.0)
            await self.reload()


def run_standalone(options: RunOptions) -> None:
    """Run until SIGINT or SIGTERM; SIGHUP re-reads the files."""
    uvloop.install()
    asyncio.run(_serve(options))


async def _serve(options: RunOptions) -> None:
    standalone = Standalone(options)
    await standalone.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(standalone.reload()))
    log.info(
        "turnout is serving; admin API on http://%s:%d",
        options.admin_host,
        options.admin_port,
    )
    await stop.wait()
    log.info("shutting down")
    await standalone.stop()
