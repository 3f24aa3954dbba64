"""What a load of the files source returns: the Snapshot, problems located in files,
and where each object came from.

Place in the pipeline: **sources** -> Snapshot -> graph -> (status, IR) -> data plane.
These are the types ``FileSource.load`` (sources/files.py) returns and the scan
(sources/scan.py) and reading (sources/reading.py) produce; ``turnout check`` and the
runtime print the errors and keep the statuses other controllers wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from turnout.sources.snapshot import Snapshot

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
