"""Fuzz target: manifest files (YAML, or JSON when the input starts with "{") through
turnout.sources.FileSource -- reading, alias expansion, parse_object, bookkeeping.

A crash is any exception out of FileSource.load(): bad input must become a LoadError.
A good file next to the fuzzed one must still load.

    python fuzz/manifest.py [corpus dirs] [libFuzzer flags]
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from _fuzzing import instrumented, main

with instrumented(__name__ == "__main__"):
    from turnout.sources import FileSource

_DIR = Path(tempfile.mkdtemp(prefix="turnout-fuzz-"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
_GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: a}\ndata: {k: v}\n"
(_DIR / "good.yaml").write_text(_GOOD)


def one_input(data: bytes) -> None:
    suffix = ".json" if data.startswith(b"{") else ".yaml"
    for stale in _DIR.glob("fuzzed.*"):
        stale.unlink()
    (_DIR / f"fuzzed{suffix}").write_bytes(data)
    result = FileSource([_DIR]).load()
    if ("ConfigMap", "a", "cfg") not in result.origins:
        raise AssertionError("a broken file cost another file its objects")
    for error in result.errors:
        str(error)


if __name__ == "__main__":
    main(one_input)
