"""Entry points shared by the fuzz targets; imports nothing from turnout itself.

Targets import turnout (through _harness) inside ``instrumented()``, so that atheris
adds coverage feedback to turnout's modules only -- instrumenting every loaded module
(pydantic, yaml, asyncio) costs a minute of start-up and slows each run.
Under pytest (tests/test_fuzz_targets.py) nothing is instrumented and atheris is not needed.

Under atheris the data plane runs from its ``.py`` source (``TURNOUT_PURE_PYTHON=1``,
see turnout.dataplane.native): atheris cannot instrument the mypyc-compiled extension
modules ``make install`` builds, so fuzzing them would get no coverage feedback at all
from the code under test. The compiled build is the same source; tests/test_fuzz_targets.py
replays every corpus input through it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


@contextlib.contextmanager
def instrumented(active: bool, also: tuple[str, ...] = ()) -> Iterator[None]:
    """Instrument turnout (and the packages ``also`` names) imported in this block."""
    if not active:
        yield
        return
    import atheris

    os.environ["TURNOUT_PURE_PYTHON"] = "1"
    # The package's __init__ puts its source finder on sys.meta_path; it must be there
    # before atheris's finder, which wraps what the finders after it return (an
    # extension module it skips).
    importlib.import_module("turnout.dataplane")
    with atheris.instrument_imports(include=["turnout", "_harness", *also]):
        yield


def main(one_input: Callable[[bytes], None]) -> None:
    import atheris

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
