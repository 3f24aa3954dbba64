from __future__ import annotations

import pytest
from click.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    # Wide enough that rich does not wrap table cells the tests look for.
    return CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1"})
