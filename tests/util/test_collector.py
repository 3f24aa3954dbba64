"""collector_paused and ReloadCollector: when the cyclic garbage collector may run."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from turnout.util import collector
from turnout.util.collector import (
    ReloadCollector,
    collector_paused,
    end_pause_for_start,
    pause_for_start,
)


def test_paused_inside_and_enabled_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restored_after_an_exception() -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_async_with() -> None:
    async with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


class _Node:
    """Something with a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


async def test_frozen_cyclic_garbage_is_reclaimed_once_reloads_go_quiet() -> None:
    collector = ReloadCollector(idle_delay=0.05, every=100)
    node = _Node()
    ref = weakref.ref(node)
    try:
        collector.reloaded()  # node is alive: frozen
        del node
        gc.collect()  # what an automatic collection does: frozen objects are skipped
        assert ref() is not None
        await asyncio.sleep(0.3)  # quiet: unfreeze, one full collection, freeze
        assert ref() is None
    finally:
        collector.close()
        gc.unfreeze()


async def test_a_full_collection_at_least_every_n_reloads() -> None:
    collector = ReloadCollector(idle_delay=3600, every=2)
    node = _Node()
    ref = weakref.ref(node)
    try:
        collector.reloaded()
        del node
        gc.collect()
        assert ref() is not None
        collector.reloaded()  # the second reload: a full collection now
        assert ref() is None
    finally:
        collector.close()
        gc.unfreeze()


def test_paused_for_start_until_ended() -> None:
    assert gc.isenabled()
    pause_for_start()
    try:
        assert not gc.isenabled()
    finally:
        end_pause_for_start()
    assert gc.isenabled()
    end_pause_for_start()  # a second end (cli.run's fallback after Standalone's) is a no-op
    assert gc.isenabled()


def test_a_start_pause_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        pause_for_start()
        end_pause_for_start()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_full_collections_are_rare_only_without_connections_in_process(tmp_path: Path) -> None:
    """With workers the control plane holds no client connections: full collections (a
    stall of the control plane) wait for 10 idle minutes; in-process they stay frequent."""
    from turnout.runtime import RunOptions, Standalone

    in_process = Standalone(RunOptions(paths=(tmp_path,), workers=0))
    with_workers = Standalone(RunOptions(paths=(tmp_path,), workers=2))
    assert in_process.collector._idle_delay == collector.IN_PROCESS_IDLE_DELAY
    assert in_process.collector._every == collector.IN_PROCESS_EVERY_RELOADS
    assert with_workers.collector._idle_delay == collector.IDLE_DELAY == 600.0
    assert with_workers.collector._every == collector.EVERY_RELOADS
