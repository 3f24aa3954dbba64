"""tools/pick-python: which interpreter `make install` builds ./.venv with.

The candidates are stand-in executables that answer the picker's probes (the script
they are given with ``-c``) the way a real interpreter of a given kind would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PICKER = Path(__file__).resolve().parents[1] / "tools" / "pick-python"

# What a stand-in is: (a recent enough version, venv and headers installed).
COMPLETE = (True, True)
NO_VENV_OR_HEADERS = (True, False)
TOO_OLD = (False, False)


def stand_in(tmp: Path, name: str, kind: tuple[bool, bool]) -> Path:
    """An executable that passes the version probe iff ``kind[0]`` and the complete
    probe (which imports ensurepip and looks for Python.h) iff ``kind[1]``."""
    recent, complete = kind
    path = tmp / name
    path.write_text(
        "#!/bin/sh\n"
        'case "$2" in\n'
        f"  *ensurepip*) exit {0 if complete else 1} ;;\n"
        f"  *) exit {0 if recent else 1} ;;\n"
        "esac\n"
    )
    path.chmod(0o755)
    return path


def pick(candidates: list[Path | str]) -> str:
    done = subprocess.run(
        [str(PICKER)],
        env={"PATH": "/usr/bin:/bin", "PICK_PYTHON_CANDIDATES": " ".join(map(str, candidates))},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_first_complete_candidate_wins(tmp_path: Path) -> None:
    distro = stand_in(tmp_path, "distro", COMPLETE)
    other = stand_in(tmp_path, "other", COMPLETE)
    assert pick([distro, other]) == str(distro)


def test_a_candidate_without_venv_or_headers_is_passed_over(tmp_path: Path) -> None:
    bare = stand_in(tmp_path, "bare", NO_VENV_OR_HEADERS)
    full = stand_in(tmp_path, "full", COMPLETE)
    assert pick([bare, full]) == str(full)


def test_a_recent_one_is_taken_when_none_is_complete(tmp_path: Path) -> None:
    old = stand_in(tmp_path, "old", TOO_OLD)
    bare = stand_in(tmp_path, "bare", NO_VENV_OR_HEADERS)
    assert pick([old, bare]) == str(bare)


def test_missing_or_too_old_candidates_leave_python3(tmp_path: Path) -> None:
    old = stand_in(tmp_path, "old", TOO_OLD)
    assert pick([tmp_path / "absent", old]) == "python3"


def test_the_running_interpreter_passes_the_real_probes() -> None:
    """The probes themselves, run by a real interpreter: the one running the tests is
    3.11+ with venv, and has Python.h where the data plane was compiled."""
    chosen = pick([sys.executable])
    assert chosen == sys.executable


def test_a_name_not_on_path_is_skipped() -> None:
    assert pick(["definitely-not-a-python-xyz", sys.executable]) == sys.executable
