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
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from turnout.resources import (
    CLUSTER_SCOPED_KINDS,
    ConfigMap,
    EndpointSlice,
    Namespace,
    ParseResult,
    Resource,
    Secret,
    parse_object,
)
from turnout.resources.compact import share_bookkeeping
from turnout.sources import yamldata
from turnout.sources.incremental import Listing, patched_snapshot, snapshot_of
from turnout.sources.snapshot import Snapshot

MANIFEST_SUFFIXES = frozenset({".yaml", ".yml", ".json"})

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name); namespace "" for cluster-scoped kinds."""


@dataclass(frozen=True)
class LoadError:
    """One problem (or warning) found while loading, located as precisely as known."""

    file: str
    message: str
    document: int | None = None
    """1-based index of the YAML document (always 1 for JSON)."""
    item: int | None = None
    """0-based index in a ``List``'s ``items``."""
    line: int | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    path: str = ""
    """Field path inside the object, e.g. ``spec.rules[0].backendRefs[0].port``."""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.document is not None:
            where += f"#{self.document}"
        if self.item is not None:
            where += f" items[{self.item}]"
        who = _describe(self.kind, self.namespace, self.name)
        head = f"{where} {who}" if who else where
        detail = f"{self.path}: {self.message}" if self.path else self.message
        return f"{head}: {detail}"


@dataclass(frozen=True)
class IgnoredObject:
    """A document of a kind turnout does not read (listed, not an error)."""

    file: str
    document: int
    item: int | None
    api_version: str
    kind: str
    namespace: str | None
    name: str | None

    def __str__(self) -> str:
        where = f"{self.file}#{self.document}"
        if self.item is not None:
            where += f" items[{self.item}]"
        who = _describe(self.kind, self.namespace, self.name)
        return f"{where} {who} ({self.api_version})"


@dataclass(frozen=True)
class Origin:
    """Where an object in the Snapshot came from, and the document as written."""

    file: str
    document: int
    item: int | None
    status: dict[str, Any] | None = None
    """The ``status`` the document was written with (entries of other controllers are
    kept from it). Only this is kept of the document as written: the whole tree was
    as large as the typed model."""


@dataclass(frozen=True)
class LoadResult:
    snapshot: Snapshot
    errors: list[LoadError] = field(default_factory=list)
    warnings: list[LoadError] = field(default_factory=list)
    ignored: list[IgnoredObject] = field(default_factory=list)
    origins: dict[ObjectKey, Origin] = field(default_factory=dict)
    stale: set[ObjectKey] = field(default_factory=set)
    """Objects kept at their last good version because the current one is broken."""
    changed: frozenset[ObjectKey] | None = None
    """Keys whose object is not the very same (by identity) as in the previous load of
    the same source: added, removed or modified. None: no previous load to compare with.
    An object whose file was rewritten without changing it keeps its identity."""

    def statuses(self) -> dict[ObjectKey, dict[str, Any]]:
        """The `status` each object was written with (other controllers' entries)."""
        return {
            key: origin.status for key, origin in self.origins.items() if origin.status is not None
        }


def _describe(kind: str | None, namespace: str | None, name: str | None) -> str:
    if kind is None:
        return ""
    if name is None:
        return kind
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


# --- discovery and reading ------------------------------------------------------------


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[LoadError]]:
    """Manifest files under ``paths``: recursive, sorted, dot-names skipped.

    A file named explicitly is read whatever its name.
    """
    found: list[Path] = []
    errors: list[LoadError] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.extend(_walk_dir(path))
        elif path.is_file():
            found.append(path)
        else:
            errors.append(LoadError(str(path), "no such file or directory"))
    return found, errors


def _walk_dir(directory: Path) -> Iterator[Path]:
    # os.scandir, not Path.iterdir: the entry types come with the listing (no stat per
    # entry), which matters when a reload walks thousands of files.
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk_dir(Path(entry.path))
        elif entry.is_file() and os.path.splitext(entry.name)[1] in MANIFEST_SUFFIXES:
            yield Path(entry.path)


@dataclass(frozen=True)
class _Document:
    index: int
    item: int | None
    body: Any


def read_documents(path: Path) -> tuple[list[_Document], LoadError | None]:
    """The documents of one file, or the error that makes the whole file unusable."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], LoadError(name, f"cannot read file: {exc}")
    try:
        if path.suffix == ".json":
            bodies: list[Any] = [json.loads(text)] if text.strip() else []
        else:
            # Plain manifests: JSON data in one pass (None: anything else, or an error).
            fast = yamldata.documents(text, MAX_VALUES_PER_FILE)
            if fast is not None:
                return _split_documents(fast), None
            bodies = list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    except json.JSONDecodeError as exc:
        return [], LoadError(name, f"invalid JSON: {exc.msg}", line=exc.lineno)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return [], LoadError(name, f"invalid YAML: {problem}", line=line)
    except RecursionError:
        return [], LoadError(name, "document is nested too deeply")
    except (ValueError, OverflowError) as exc:
        # PyYAML builds timestamps with datetime(), which raises ValueError for a date
        # like 2026-01-00 instead of a YAMLError (found by fuzz/manifest.py).
        return [], LoadError(name, f"invalid YAML: {exc}")
    try:
        bodies = _to_json_data(bodies, [MAX_VALUES_PER_FILE])
    except _TooManyValues:
        return [], LoadError(name, f"more than {MAX_VALUES_PER_FILE} values once aliases expand")
    except RecursionError:  # also a recursive alias (&a [*a])
        return [], LoadError(name, "document is nested too deeply (or a recursive alias)")
    return _split_documents(bodies), None


def _split_documents(bodies: list[Any]) -> list[_Document]:
    """Documents by index; the items of a ``List`` each become one."""
    docs: list[_Document] = []
    for index, body in enumerate(bodies, start=1):
        if body is None:
            continue
        items = body.get("items") if isinstance(body, dict) else None
        kind = body.get("kind") if isinstance(body, dict) else None
        if isinstance(items, list) and (kind is None or str(kind).endswith("List")):
            docs.extend(_Document(index, i, item) for i, item in enumerate(items))
        else:
            docs.append(_Document(index, None, body))
    return docs


# YAML aliases share one node between many places; copied out as JSON data, nine levels
# of nine aliases ("billion laughs") would make 387 million values. The API server bounds
# alias expansion too; a million values is far beyond any real manifest file.
MAX_VALUES_PER_FILE = 1_000_000


class _TooManyValues(Exception):
    pass


def _to_json_data(value: Any, budget: list[int]) -> Any:
    """YAML-only scalars as JSON would carry them (timestamps as RFC 3339, bytes base64).

    ``budget`` holds how many more values may be produced (see MAX_VALUES_PER_FILE).
    """
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooManyValues
    if isinstance(value, dict):
        return {k: _to_json_data(v, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json_data(v, budget) for v in value]
    if isinstance(value, dt.datetime):
        return rfc3339(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def rfc3339(when: dt.datetime) -> str:
    """``2026-01-02T03:04:05Z``: UTC, second precision (naive times are taken as UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


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
        self._files: dict[str, _FileCache] = {}
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
        scan = _Scan(errors=errors, cache=self._files)
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
        scans: dict[str, _Scan] = {}
        for name in sorted(forced):
            scan = scans[name] = _Scan(cache=self._files)
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


@dataclass
class _FileCache:
    """One file as last read: its stat stamp, documents and their parse results."""

    stamp: tuple[int, int, int] | None
    docs: list[_Document]
    error: LoadError | None
    parsed: list[ParseResult | None]
    origins: list[Origin | None] = field(default_factory=list)
    """Per document, its Origin once it loaded as a valid object without warnings: the
    same Origin object on every load while the file is unchanged."""


@dataclass
class _Scan:
    """One pass over the files: valid objects, problems, and what must be kept."""

    errors: list[LoadError] = field(default_factory=list)
    warnings: list[LoadError] = field(default_factory=list)
    ignored: list[IgnoredObject] = field(default_factory=list)
    current: dict[ObjectKey, tuple[Resource, Origin]] = field(default_factory=dict)
    broken_files: set[str] = field(default_factory=set)
    """Files that failed to parse, or hold an invalid document we cannot identify."""
    invalid_keys: set[ObjectKey] = field(default_factory=set)
    cache: dict[str, _FileCache] = field(default_factory=dict)
    """Files as read by the previous load; `new_cache` is this load's."""
    new_cache: dict[str, _FileCache] = field(default_factory=dict)
    file_keys: dict[str, list[ObjectKey]] = field(default_factory=dict)
    """The keys each file put into ``current``, in document order."""
    unclean: set[str] = field(default_factory=set)
    """Files with any error, warning, ignored or duplicated object (see _Clean)."""

    def clean_files(self) -> dict[str, list[ObjectKey]]:
        return {f: keys for f, keys in self.file_keys.items() if f not in self.unclean}

    def keeps_last_good(self, key: ObjectKey, file: str) -> bool:
        return key in self.invalid_keys or file in self.broken_files

    def read_file(self, name: str, *, trusted: bool = False, force: bool = False) -> None:
        """Add the file's objects and problems.

        The file is read again when its stat stamp changed; ``force``: in any case (a
        watcher reported it: a rewrite within one mtime tick keeps size and inode).
        ``trusted``: a watcher reported no change, so its cached reading is used without
        a stat, when there is one."""
        self.file_keys[name] = []
        cached = self.cache.get(name)
        if trusted and cached is not None:
            stamp: tuple[int, int, int] | None = cached.stamp
        else:
            try:
                st = os.stat(name)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None
        if cached is None or stamp is None or cached.stamp != stamp or force:
            # Only changed files are read and parsed again: YAML and validation are
            # most of a reload's cost at thousands of routes.
            docs, error = read_documents(Path(name))
            cached = _FileCache(stamp, docs, error, [None] * len(docs), [None] * len(docs))
        if stamp is not None:
            self.new_cache[name] = cached
        if cached.error is not None:
            self.errors.append(cached.error)
            self.broken_files.add(cached.error.file)
            self.unclean.add(name)
            return
        for i, doc in enumerate(cached.docs):
            origin = cached.origins[i]
            result = cached.parsed[i]
            if origin is not None and result is not None and result.obj is not None:
                # Loaded before as a valid object without warnings: only the
                # duplicate check depends on the other files.
                key = (result.obj.kind, result.obj.namespace, result.obj.name)
                if key not in self.current:
                    self.current[key] = (result.obj, origin)
                    self.file_keys[name].append(key)
                    continue
            self._add(name, doc, cached, i)

    def _add(self, file: str, doc: _Document, cached: _FileCache, i: int) -> None:
        result = cached.parsed[i]
        if result is None:
            if not isinstance(doc.body, Mapping):
                self.errors.append(
                    LoadError(file, "a document must be an object", doc.index, doc.item)
                )
                self.broken_files.add(file)
                self.unclean.add(file)
                return
            result = cached.parsed[i] = _status_only(parse_object(doc.body))
            # Parsed once per file version: the document itself is not needed again.
            cached.docs[i] = _Document(doc.index, doc.item, None)

        def problem(message: str, path: str = "") -> LoadError:
            return LoadError(
                file,
                message,
                doc.index,
                doc.item,
                kind=result.kind,
                namespace=result.namespace,
                name=result.name,
                path=path,
            )

        if result.ignored or result.warnings or result.obj is None:
            self.unclean.add(file)
        if result.ignored:
            self.ignored.append(
                IgnoredObject(
                    file,
                    doc.index,
                    doc.item,
                    result.api_version or "",
                    result.kind or "",
                    result.namespace,
                    result.name,
                )
            )
            return
        self.warnings.extend(problem(w.message, w.path) for w in result.warnings)
        if result.obj is None:
            self.errors.extend(problem(e.message, e.path) for e in result.errors)
            key = _key_of(result)
            if key is None:
                self.broken_files.add(file)
            else:
                self.invalid_keys.add(key)
            return
        obj = result.obj
        key = (obj.kind, obj.namespace, obj.name)
        if key in self.current:
            first = self.current[key][1]
            self.unclean.update((file, first.file))
            self.errors.append(
                problem(f"duplicate object: already defined in {first.file}#{first.document}")
            )
            return
        origin = Origin(file, doc.index, doc.item, result.raw.get("status"))
        if not result.warnings:
            cached.origins[i] = origin  # the next load of this file takes the fast path
        self.current[key] = (obj, origin)
        self.file_keys[file].append(key)


def _status_only(result: ParseResult) -> ParseResult:
    """``result`` keeping of the document as written only its ``status`` (a mapping),
    which is all the source uses later (``LoadResult.statuses``)."""
    status = result.raw.get("status")
    return dataclasses.replace(result, raw={"status": status} if isinstance(status, dict) else {})


def _key_of(result: ParseResult) -> ObjectKey | None:
    if result.kind is None or result.name is None or result.namespace is None:
        return None
    if result.kind in CLUSTER_SCOPED_KINDS:
        return (result.kind, "", result.name)
    return (result.kind, result.namespace, result.name)


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
