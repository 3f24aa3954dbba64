"""Watch manifest paths and yield batches of changed files.

Place in the pipeline: **sources** -> Snapshot -> graph. The watcher says which paths
changed; the caller reloads with ``FileSource.load(changed_paths)``, which reads only
those (and lists everything again for what it cannot place: a directory, say). A path
filtered out here is never reloaded, so the filter errs towards reporting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from watchfiles import Change, awatch

from turnout.sources.reading import MANIFEST_SUFFIXES

# Editor droppings that are never manifests.
_IGNORED_SUFFIXES = (".swp", ".swx", ".swo", ".tmp", "~")


def _is_hidden(path: Path, roots: Iterable[Path]) -> bool:
    """A dot-name anywhere below the watched root, or an editor temp file."""
    if path.name.endswith(_IGNORED_SUFFIXES):
        return True
    for root in roots:
        try:
            relative = path.relative_to(root)
        except ValueError:
            continue
        return any(part.startswith(".") for part in relative.parts)
    return path.name.startswith(".")


def _may_hold_manifests(path: Path) -> bool:
    """Could a change here change what the loader reads?

    Only manifest files (by suffix, as the loader picks them) and directories. A log
    file or an editor's scratch file in the watched directory must not cause a reload:
    a process that logs into the directory it watches would otherwise reload forever.
    A path that is gone may have been a directory, whatever its name (``conf.d`` moved
    out of the tree is one event, for the directory): reported, since the loader only
    looks again at what is reported.
    """
    return path.suffix in MANIFEST_SUFFIXES or path.is_dir() or not path.exists()


async def watch_paths(
    paths: Iterable[str | Path],
    *,
    debounce_ms: int = 100,
    quiet_ms: int = 10,
    stop_event: asyncio.Event | None = None,
) -> AsyncIterator[set[Path]]:
    """Yield the set of changed paths after each burst of changes (dotfiles and files
    that are not manifests ignored).

    A burst ends when no change arrived for ``quiet_ms``, or ``debounce_ms`` after its
    first change. The quiet period is what a lone change waits before it is reloaded,
    so it is short; a burst (an editor's write and rename, a tool deleting thousands of
    files) comes in well under it between events and still makes one batch.

    Files are watched through their directory, so editors that save by renaming a
    new file over the old one are seen too.
    """
    files: set[Path] = set()
    dirs: set[Path] = set()
    for given in paths:
        path = Path(given).absolute()
        if path.is_dir():
            dirs.add(path)
        else:
            files.add(path)
    watch_roots = sorted(dirs | {f.parent for f in files})

    def wanted(change: Change, raw: str) -> bool:
        path = Path(raw)
        if path in files:
            return True
        if not any(path == d or d in path.parents for d in dirs):
            return False
        return not _is_hidden(path, dirs) and _may_hold_manifests(path)

    async for changes in awatch(
        *watch_roots,
        watch_filter=wanted,
        debounce=debounce_ms,
        step=min(quiet_ms, debounce_ms),
        stop_event=stop_event,
        rust_timeout=1000,
        yield_on_timeout=False,
    ):
        batch = {Path(raw) for _, raw in changes}
        if batch:
            yield batch
