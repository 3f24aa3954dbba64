"""Entry points shared by the fuzz targets; imports nothing from turnout itself.

Targets import turnout (through _harness) inside ``instrumented()``, so that atheris
adds coverage feedback to turnout's modules only -- instrumenting every loaded module
(pydantic, yaml, asyncio) costs a minute of start-up and slows each run.
Under pytest (tests/test_fuzz_targets.py) nothing is instrumented and atheris is not needed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


@contextlib.contextmanager
def instrumented(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    import atheris

    with atheris.instrument_imports(include=["turnout", "_harness"]):
        yield


def main(one_input: Callable[[bytes], None]) -> None:
    import atheris

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
