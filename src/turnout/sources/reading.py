"""Discovery and reading of manifest files: which files, and the documents in each.

Place in the pipeline: **sources** -> Snapshot -> graph. The first step of a load of
the files source (sources/files.py): list the manifest files under the given paths in
a stable order, and turn one file into JSON-like documents (the items of a ``List`` each
become one). Validation into typed objects is the scan's job (sources/scan.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from turnout.sources import yamldata
from turnout.sources.loadresult import LoadError

MANIFEST_SUFFIXES = frozenset({".yaml", ".yml", ".json"})


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
class Document:
    index: int
    item: int | None
    body: Any


def read_documents(path: Path) -> tuple[list[Document], LoadError | None]:
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


def _split_documents(bodies: list[Any]) -> list[Document]:
    """Documents by index; the items of a ``List`` each become one."""
    docs: list[Document] = []
    for index, body in enumerate(bodies, start=1):
        if body is None:
            continue
        items = body.get("items") if isinstance(body, dict) else None
        kind = body.get("kind") if isinstance(body, dict) else None
        if isinstance(items, list) and (kind is None or str(kind).endswith("List")):
            docs.extend(Document(index, i, item) for i, item in enumerate(items))
        else:
            docs.append(Document(index, None, body))
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
