"""Whether the data plane runs compiled (mypyc) or interpreted, and the switch between them.

``setup.py`` compiles the data-plane modules with mypyc into C extensions that sit beside
their source; Python's import system then prefers the extension. The source stays the
reference and is always importable:

* ``TURNOUT_PURE_PYTHON=1`` in the environment (read when ``turnout.dataplane`` is first
  imported) makes every ``turnout.dataplane`` module load from its ``.py`` source, with no
  rebuild: for debugging, for comparing both, and as a switch if a compiled module ever
  misbehaves (``make test`` runs the data-plane tests both ways).
* :func:`stale` lists compiled modules older than their source (the source was edited
  after the last build): the test suite refuses to run on them and ``turnout run`` warns,
  because the process would silently run the old code. ``make install`` rebuilds them.

Hand-written: importlib has no switch to prefer source over extension modules.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE = "turnout.dataplane"
HERE = Path(__file__).resolve().parent
PURE_ENV = "TURNOUT_PURE_PYTHON"


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


class SourceFinder(importlib.abc.MetaPathFinder):
    """Finds ``turnout.dataplane.*`` modules in their ``.py`` source, never an extension."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE:
            return None
        source = HERE / f"{name}.py"
        if not source.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def install_source_finder() -> None:
    """Load every data-plane module from source from now on (idempotent)."""
    if not any(isinstance(finder, SourceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, SourceFinder())


def stale(directory: Path = HERE) -> list[str]:
    """Names of compiled modules whose source changed after they were built."""
    old = []
    for path in sorted(directory.glob("*.so")):
        source = directory / f"{path.name.split('.')[0]}.py"
        if source.is_file() and source.stat().st_mtime > path.stat().st_mtime:
            old.append(source.stem)
    return old


def mode() -> str:
    """How the request path runs in this process: "compiled" or "interpreted"."""
    spec = importlib.util.find_spec(f"{PACKAGE}.http1")
    origin = spec.origin if spec is not None else None
    return "compiled" if origin is not None and not origin.endswith(".py") else "interpreted"
