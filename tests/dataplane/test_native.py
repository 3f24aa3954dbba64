"""The compiled/interpreted switch of the data plane (turnout.dataplane.native)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from turnout.dataplane import native

COMPILED = any(native.HERE.glob("http1.*.so"))


def _run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_pure_switch_loads_every_module_from_source() -> None:
    code = (
        "from turnout.dataplane import native, http1, upstream, router\n"
        "print(native.mode(), http1.__file__, upstream.__file__, router.__file__)"
    )
    mode, *files = _run(code, TURNOUT_PURE_PYTHON="1").split()
    assert mode == "interpreted"
    assert all(f.endswith(".py") for f in files), files


@pytest.mark.skipif(not COMPILED, reason="the data plane was installed without compiling")
def test_compiled_modules_are_used_by_default() -> None:
    code = "from turnout.dataplane import native, http1\nprint(native.mode(), http1.__file__)"
    mode, path = _run(code).split()
    assert mode == "compiled"
    assert not path.endswith(".py")


def test_stale_lists_compiled_modules_older_than_their_source(tmp_path: Path) -> None:
    for name in ("fresh", "old"):
        (tmp_path / f"{name}.py").write_text("")
        (tmp_path / f"{name}.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (tmp_path / "orphan.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")  # no source
    os.utime(tmp_path / "old.py", (2_000_000_000, 2_000_000_000))  # edited after the build
    assert native.stale(tmp_path) == ["old"]
