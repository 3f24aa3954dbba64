"""The reload path of ``turnout run``: watcher batches reach the incremental pipeline.

In process (``workers=0``), so that a race with the first load can be staged exactly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port
from turnout import ir, runtime
from turnout.runtime import RunOptions, Standalone

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: turnout}
spec: {controllerName: turnout.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: turnout
  listeners: [{name: http, port: 80, protocol: HTTP}]
"""


def route(name: str, path: str) -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{matches: [{{path: {{type: PathPrefix, value: {path}}}}}]}}]
"""


def write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def paths_served(config: ir.Config) -> set[str]:
    return {
        rule.match.path.value
        for gateway in config.gateways
        for listener in gateway.listeners
        for vhost in listener.virtual_hosts
        for rule in vhost.routes
        if rule.match.path is not None
    }


async def until(predicate: object, timeout: float = 10.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def standalone(tmp_path: Path, resync_interval: float = 60.0) -> Standalone:
    port = free_port()
    return Standalone(
        RunOptions(
            paths=(tmp_path,),
            admin_port=free_port(),
            port_offset=port - 80,
            address_pool=ipaddress.ip_network("127.0.0.1/32"),
            resync_interval=resync_interval,
        )
    )


async def test_a_change_made_during_the_first_load_is_reloaded(tmp_path: Path) -> None:
    """The file watcher is set up before the first load: a file changed after the load
    read it is reported (it was lost when the watch started after the first reload)."""
    write(tmp_path / "gw.yaml", GATEWAY)
    write(tmp_path / "route.yaml", route("r", "/old"))
    turnout = standalone(tmp_path)
    compile_ = turnout.pipeline.compile
    batches: list[Collection[Path] | None] = []

    def compile_and_edit(changed_paths: Collection[Path] | None = None) -> object:
        compiled = compile_(changed_paths)
        if not batches:  # the first load has read the files: now the edit comes
            write(tmp_path / "route.yaml", route("r", "/new"))
        batches.append(changed_paths)
        return compiled

    turnout.pipeline.compile = compile_and_edit  # type: ignore[method-assign,assignment]
    await turnout.start()
    try:
        assert paths_served(turnout._config) == {"/old"}
        await until(lambda: paths_served(turnout._config) == {"/new"})
        assert batches[0] is None and batches[-1] is not None  # the edit came as a batch
    finally:
        await turnout.stop()


async def test_watched_edits_are_served_and_a_broken_file_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    write(tmp_path / "gw.yaml", GATEWAY)
    write(tmp_path / "a.yaml", route("a", "/a"))
    turnout = standalone(tmp_path)
    await turnout.start()
    try:
        write(tmp_path / "b.yaml", route("b", "/b"))  # a new file
        await until(lambda: paths_served(turnout._config) == {"/a", "/b"})
        write(tmp_path / "a.yaml", route("a", "/a2"))  # edited
        await until(lambda: paths_served(turnout._config) == {"/a2", "/b"})
        write(tmp_path / "a.yaml", "kind: [broken")  # bad YAML: the last good one stays
        await until(lambda: any("a.yaml" in e for e in turnout.load_errors()))
        assert paths_served(turnout._config) == {"/a2", "/b"}
        os.replace(tmp_path / "b.yaml", tmp_path / "c.yaml")  # renamed: still served
        (tmp_path / "sub").mkdir()
        write(tmp_path / "sub" / "d.yaml", route("d", "/d"))  # in a new directory
        await until(lambda: paths_served(turnout._config) == {"/a2", "/b", "/d"})
        (tmp_path / "c.yaml").unlink()
        write(tmp_path / "a.yaml", route("a", "/a3"))  # fixed
        await until(lambda: paths_served(turnout._config) == {"/a3", "/d"})
        assert turnout.load_errors() == []
    finally:
        await turnout.stop()


async def _deaf_watcher(paths: object, **_kw: object) -> AsyncIterator[set[Path]]:
    """A watcher that loses every event."""
    await asyncio.Event().wait()
    yield set()


@pytest.mark.parametrize("resync_interval", [0.2, 0.0])
async def test_a_change_the_watcher_missed_is_found_by_the_periodic_resync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resync_interval: float
) -> None:
    monkeypatch.setattr(runtime, "watch_paths", _deaf_watcher)
    write(tmp_path / "gw.yaml", GATEWAY)
    write(tmp_path / "route.yaml", route("r", "/old"))
    turnout = standalone(tmp_path, resync_interval=resync_interval)
    await turnout.start()
    try:
        write(tmp_path / "route.yaml", route("r", "/new"))
        if resync_interval:
            await until(lambda: paths_served(turnout._config) == {"/new"})
        else:  # without the resync, nothing notices (what the resync is for)
            await asyncio.sleep(0.6)
            assert paths_served(turnout._config) == {"/old"}
    finally:
        await turnout.stop()
