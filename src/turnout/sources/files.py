"""The files source: YAML/JSON manifests on disk -> Snapshot.

Place in the pipeline: **sources** -> Snapshot -> graph -> (status, IR) -> data plane.

Theory of operation. ``FileSource.load()`` reads every manifest under the configured
paths and validates each document with ``turnout.resources.parse_object``. Between
loads it keeps the bookkeeping the API server would: a stable ``uid``, the
``creationTimestamp`` of the first sighting, and a ``generation`` that starts at 1 and
grows by one whenever the object's spec (data, for Secrets, ConfigMaps and
EndpointSlices) changes. Invariants:

* An object that loaded before keeps its **last good version** while its file does not
  parse or its new version is invalid; the error is reported and the key is listed in
  ``LoadResult.stale``. An object removed from a file that parses is removed (unless
  that file also holds an invalid document whose kind/name cannot be read: then all
  of the file's previous objects are kept, as if it did not parse).
* Unchanged spec => unchanged generation, whatever happened to metadata or formatting
  (specs are compared after defaulting, as normalised JSON).
* The same kind/namespace/name defined twice: the first one (in sorted file order,
  then document order) wins, the later one is an error.

The files source is four modules: this one (the stateful ``FileSource`` and its
bookkeeping), ``reading`` (discovery, and one file into documents), ``scan`` (one pass
over the files: validation, problems, last good versions) and ``loadresult`` (what a
load returns). ``incremental`` places the paths a watcher reported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turnout.resources import ConfigMap, EndpointSlice, Namespace, Resource, Secret
from turnout.resources.compact import share_bookkeeping
from turnout.sources.incremental import Listing, patched_snapshot, snapshot_of
from turnout.sources.loadresult import IgnoredObject, LoadError, LoadResult, ObjectKey, Origin
from turnout.sources.reading import MANIFEST_SUFFIXES, discover, rfc3339
from turnout.sources.scan import FileCache, Scan
from turnout.sources.snapshot import Snapshot

__all__ = ["FileSource", "load_paths", "spec_fingerprint"]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- the stateful source --------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    obj: Resource
    origin: Origin
    fingerprint: str | None
    """spec_fingerprint(obj); None until the object first changes (computed then from
    ``obj``: most objects never change, and the strings were 7 MB at 5,000 routes)."""
    source: Resource | None = None
    """The object as parsed, before bookkeeping: the same object (by identity) on the
    next load means its file did not change, so this record can be reused as is."""


def spec_fingerprint(obj: Resource) -> str:
    """Normalised JSON of what bumps ``generation`` when it changes."""
    if isinstance(obj, Secret):
        parts: Any = [obj.type, obj.data, obj.string_data]
    elif isinstance(obj, ConfigMap):
        parts = [obj.data, obj.binary_data]
    elif isinstance(obj, EndpointSlice):
        parts = obj.model_dump(mode="json", include={"address_type", "endpoints", "ports"})
    elif isinstance(obj, Namespace):
        parts = None
    else:
        parts = obj.spec.model_dump(mode="json", by_alias=True)
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))


class FileSource:
    """Loads manifests from files and directories, keeping state across reloads."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.paths = list(paths)
        self._clock = clock
        self._records: dict[ObjectKey, _Record] = {}
        self._files: dict[str, FileCache] = {}
        self._snapshot: Snapshot | None = None
        # The files of the last load in load order, and what discover() reported about
        # the given paths themselves (a missing path).
        self._listing = Listing(self.paths)
        self._discover_errors: list[LoadError] = []
        self._last: _LastLoad | None = None

    def load(self, changed_paths: Collection[str | Path] | None = None) -> LoadResult:
        """Read the manifests; with ``changed_paths`` (what a watcher reported since the
        last load), only those files are looked at again.

        Without ``changed_paths`` every file is listed and stat'ed, and read again when
        its stat changed. With them, the listing is updated (``_listing``) and, when
        the changed files were and stay free of problems, the last result is patched
        (``_patch``); otherwise every file is scanned, trusting the cached reading of
        the unchanged ones. Either way the result is what a full load would give."""
        listing = None
        if changed_paths is not None and self._listing.names is not None:
            listing = self._listing.update(changed_paths, MANIFEST_SUFFIXES)
        if listing is not None:
            patched = self._patch(*listing)
            if patched is not None:
                return patched
        forced: set[str] = set()
        if listing is None:
            files, errors = discover(self.paths)
            self._listing.reset([str(path) for path in files])
            self._discover_errors = list(errors)  # the scan appends to errors
        else:
            forced = listing[0]
            errors = list(self._discover_errors)
        scan = Scan(errors=errors, cache=self._files)
        for name in self._listing.names or ():
            scan.read_file(
                name, trusted=listing is not None and name not in forced, force=name in forced
            )
        self._files = scan.new_cache
        records: dict[ObjectKey, _Record] = {}
        now = rfc3339(self._clock())
        for key, (obj, origin) in scan.current.items():
            records[key] = self._book(key, obj, origin, now)
        stale: set[ObjectKey] = set()
        for key, old in self._records.items():
            if key not in records and scan.keeps_last_good(key, old.origin.file):
                records[key] = old
                stale.add(key)
        origins = {key: r.origin for key, r in records.items()}
        self._last = _LastLoad(
            errors=scan.errors,
            warnings=scan.warnings,
            ignored=scan.ignored,
            invalid_keys=scan.invalid_keys,
            stale=stale,
            clean=scan.clean_files(),
            listed=frozenset(self._listing.names or ()),
            origins=origins,
        )
        return self._result(records, origins, self._last)

    def _result(
        self,
        records: dict[ObjectKey, _Record],
        origins: dict[ObjectKey, Origin],
        last: _LastLoad,
        changed: frozenset[ObjectKey] | None = None,
    ) -> LoadResult:
        previous, self._records = self._records, records
        if changed is None and self._snapshot is not None:
            changed = _changed_keys(previous, records)
        snapshot = None
        if self._snapshot is not None and changed is not None:
            objects = {key: r.obj if (r := records.get(key)) else None for key in changed}
            snapshot = patched_snapshot(self._snapshot, objects)
        if snapshot is None:
            snapshot = snapshot_of(records[key].obj for key in sorted(records))
        self._snapshot = snapshot
        return LoadResult(
            snapshot=self._snapshot,
            errors=list(last.errors),
            warnings=list(last.warnings),
            ignored=list(last.ignored),
            origins=dict(origins),
            stale=set(last.stale),
            changed=changed,
        )

    def _patch(self, forced: set[str], removed: set[str]) -> LoadResult | None:
        """The last result with the objects of the ``forced`` (read again) and
        ``removed`` files replaced, in time proportional to those files; None when the
        full scan is needed: a file involved had or has a problem (error, warning,
        ignored or duplicate object: their order and the duplicate rule depend on the
        other files), or an object moved between files."""
        last = self._last
        if last is None or any(
            name in last.listed and name not in last.clean for name in forced | removed
        ):
            return None
        added: dict[ObjectKey, tuple[Resource, Origin]] = {}
        scans: dict[str, Scan] = {}
        for name in sorted(forced):
            scan = scans[name] = Scan(cache=self._files)
            scan.read_file(name, force=True)
            if scan.unclean or scan.errors or any(key in added for key in scan.current):
                return None
            added.update(scan.current)
        dropped = {key for name in forced | removed for key in last.clean.get(name, ())}
        if any(key in self._records and key not in dropped for key in added):
            return None  # defined elsewhere too (or kept stale): the order decides
        if any(key in last.invalid_keys for key in dropped - added.keys()):
            return None  # an invalid document elsewhere names it: it may be kept stale
        records = dict(self._records)
        origins = dict(last.origins)
        for key in dropped - added.keys():
            del records[key]
            del origins[key]
        now = rfc3339(self._clock())
        for key, (obj, origin) in added.items():
            records[key] = self._book(key, obj, origin, now)
            origins[key] = origin
        self._files = {n: f for n, f in self._files.items() if n not in forced | removed}
        clean = {n: keys for n, keys in last.clean.items() if n not in removed}
        for name, scan in scans.items():
            self._files.update(scan.new_cache)
            clean[name] = scan.file_keys[name]
        self._last = dataclasses.replace(
            last, clean=clean, listed=frozenset(self._listing.names or ()), origins=origins
        )
        changed = (dropped - added.keys()) | {
            key
            for key in added
            if (old := self._records.get(key)) is None or old.obj is not records[key].obj
        }
        return self._result(records, origins, self._last, frozenset(changed))

    def _book(self, key: ObjectKey, obj: Resource, origin: Origin, now: str) -> _Record:
        """Apply the API server's bookkeeping to a freshly loaded, valid object."""
        old = self._records.get(key)
        if old is not None and old.source is obj and old.origin == origin:
            return old  # same file, unchanged: parsing gave the very same object
        fingerprint = spec_fingerprint(obj) if old is not None else None
        meta = obj.metadata
        if old is None:
            uid = meta.uid or str(uuid.uuid4())
            created = meta.creation_timestamp or now
            generation = 1
        else:
            uid = meta.uid or old.obj.metadata.uid or str(uuid.uuid4())
            created = meta.creation_timestamp or old.obj.metadata.creation_timestamp or now
            previous = old.obj.metadata.generation or 1
            old_fingerprint = old.fingerprint or spec_fingerprint(old.obj)
            generation = previous + (fingerprint != old_fingerprint)
        new_meta = meta.model_copy(
            update={"uid": uid, "creation_timestamp": created, "generation": generation}
        )
        booked: Resource = obj.model_copy(update={"metadata": new_meta})
        if old is not None and booked == old.obj:
            # Its file was rewritten but the object is the same: keep the very same
            # object, so that everything downstream keyed by identity is reused.
            return _Record(old.obj, origin, fingerprint, obj)
        share_bookkeeping(new_meta)  # the copies' own sets (memory; see resources.compact)
        share_bookkeeping(booked)
        return _Record(booked, origin, fingerprint, obj)


@dataclass(frozen=True)
class _LastLoad:
    """What the last load found, for ``FileSource._patch`` to start from."""

    errors: list[LoadError]
    warnings: list[LoadError]
    ignored: list[IgnoredObject]
    invalid_keys: set[ObjectKey]
    stale: set[ObjectKey]
    clean: dict[str, list[ObjectKey]]
    """Files without any problem, with the keys of their objects."""
    listed: frozenset[str]
    origins: dict[ObjectKey, Origin]


def _changed_keys(
    previous: Mapping[ObjectKey, _Record], records: Mapping[ObjectKey, _Record]
) -> frozenset[ObjectKey]:
    changed = {
        key
        for key, record in records.items()
        if (old := previous.get(key)) is None or old.obj is not record.obj
    }
    changed.update(key for key in previous if key not in records)
    return frozenset(changed)


def load_paths(
    paths: Sequence[str | Path], *, clock: Callable[[], dt.datetime] = _utcnow
) -> LoadResult:
    """One-shot load (``turnout check``): a fresh FileSource, loaded once."""
    return FileSource(paths, clock=clock).load()
