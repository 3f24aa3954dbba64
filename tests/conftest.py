from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*/*/out.yaml from the current code",
    )


def pytest_configure(config: pytest.Config) -> None:
    # A compiled data-plane module older than its source would test the old code (the
    # import system prefers the extension): refuse, and say how to rebuild.
    from turnout.dataplane import native

    old = [] if native.pure_requested() else native.stale()
    if old:
        pytest.exit(
            f"compiled data-plane modules are older than their source ({', '.join(old)}): "
            "run `make install` to rebuild them, or set TURNOUT_PURE_PYTHON=1",
            returncode=4,
        )
