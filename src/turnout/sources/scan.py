"""One pass of the files source over its files: valid objects, problems, and what must
be kept at its last good version.

Place in the pipeline: **sources** -> Snapshot -> graph. ``FileSource.load``
(sources/files.py) runs a ``Scan`` over every listed file (or, patching, over the files
a watcher reported); the scan reads a file again only when it changed
(``FileCache`` keeps the last reading and its parse results) and validates each
document with ``turnout.resources.parse_object``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from turnout.resources import CLUSTER_SCOPED_KINDS, ParseResult, Resource, parse_object
from turnout.sources.loadresult import IgnoredObject, LoadError, ObjectKey, Origin
from turnout.sources.reading import Document, read_documents


@dataclass
class FileCache:
    """One file as last read: its stat stamp, documents and their parse results."""

    stamp: tuple[int, int, int] | None
    docs: list[Document]
    error: LoadError | None
    parsed: list[ParseResult | None]
    origins: list[Origin | None] = field(default_factory=list)
    """Per document, its Origin once it loaded as a valid object without warnings: the
    same Origin object on every load while the file is unchanged."""


@dataclass
class Scan:
    """One pass over the files: valid objects, problems, and what must be kept."""

    errors: list[LoadError] = field(default_factory=list)
    warnings: list[LoadError] = field(default_factory=list)
    ignored: list[IgnoredObject] = field(default_factory=list)
    current: dict[ObjectKey, tuple[Resource, Origin]] = field(default_factory=dict)
    broken_files: set[str] = field(default_factory=set)
    """Files that failed to parse, or hold an invalid document we cannot identify."""
    invalid_keys: set[ObjectKey] = field(default_factory=set)
    cache: dict[str, FileCache] = field(default_factory=dict)
    """Files as read by the previous load; `new_cache` is this load's."""
    new_cache: dict[str, FileCache] = field(default_factory=dict)
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
            cached = FileCache(stamp, docs, error, [None] * len(docs), [None] * len(docs))
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

    def _add(self, file: str, doc: Document, cached: FileCache, i: int) -> None:
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
            cached.docs[i] = Document(doc.index, doc.item, None)

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
