"""watch_paths yields batches of changed manifests and ignores dotfiles and other files."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from turnout.sources import watch_paths


async def test_reports_changes_and_ignores_dotfiles(tmp_path: Path) -> None:
    manifest = tmp_path / "route.yaml"
    dotfile = tmp_path / ".route.yaml.swp"
    log = tmp_path / "turnout.log"  # not a manifest: a process logging here must not reload
    stop = asyncio.Event()
    batches: list[set[Path]] = []

    async def consume() -> None:
        async for batch in watch_paths([tmp_path], debounce_ms=50, stop_event=stop):
            batches.append(batch)
            if any(p.name == "route.yaml" for p in batch):
                return

    async def touch_until_seen() -> None:
        # The watcher starts asynchronously: keep changing files until it reports one.
        n = 0
        while True:
            dotfile.write_text(f"{n}")
            log.write_text(f"line {n}\n")
            manifest.write_text(f"n: {n}\n")
            n += 1
            await asyncio.sleep(0.1)

    consumer = asyncio.create_task(consume())
    toucher = asyncio.create_task(touch_until_seen())
    try:
        await asyncio.wait_for(consumer, timeout=30)
    finally:
        stop.set()
        toucher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await toucher
    assert batches
    assert all(p.name not in (dotfile.name, log.name) for batch in batches for p in batch)
    assert any(p.resolve() == manifest.resolve() for p in batches[-1])


async def test_watching_a_single_file(tmp_path: Path) -> None:
    manifest = tmp_path / "one.yaml"
    manifest.write_text("a: 1\n")
    sibling = tmp_path / "other.yaml"
    stop = asyncio.Event()
    seen: list[set[Path]] = []

    async def consume() -> None:
        async for batch in watch_paths([manifest], debounce_ms=50, stop_event=stop):
            seen.append(batch)
            return

    async def touch() -> None:
        n = 0
        while True:
            sibling.write_text(f"{n}")
            manifest.write_text(f"a: {n}\n")
            n += 1
            await asyncio.sleep(0.1)

    consumer = asyncio.create_task(consume())
    toucher = asyncio.create_task(touch())
    try:
        await asyncio.wait_for(consumer, timeout=30)
    finally:
        stop.set()
        toucher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await toucher
    assert {p.name for p in seen[0]} == {"one.yaml"}


def test_a_gone_path_is_reported_whatever_its_name(tmp_path: Path) -> None:
    """A directory moved out of the tree is one event for the directory itself."""
    from turnout.sources.watch import _may_hold_manifests

    assert _may_hold_manifests(tmp_path / "conf.d")  # gone: it may have been a directory
    (tmp_path / "turnout.log").write_text("x")
    assert not _may_hold_manifests(tmp_path / "turnout.log")  # a file written here
    (tmp_path / "conf.d").mkdir()
    assert _may_hold_manifests(tmp_path / "conf.d")
