from __future__ import annotations

import pytest

from turnout.util.duration import optional_timeout, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0.0),
        ("500ms", 0.5),
        ("1s", 1.0),
        ("1h30m", 5400.0),
        ("1h", 3600.0),
        ("2m3s", 123.0),
        ("1s500ms", 1.5),
        ("1h1m1s1ms", 3661.001),
        ("99999ms", 99.999),
        ("30s1m", 90.0),  # Go accepts any order
    ],
)
def test_parses(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "1", "1.5s", "-1s", "1d", "100000s", "1h1m1s1ms1h", "1 s", "1S", "s", "1us", " 1s"],
)
def test_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_zero_disables() -> None:
    assert optional_timeout(None) is None
    assert optional_timeout("0s") is None
    assert optional_timeout("0ms") is None
    assert optional_timeout("200ms") == pytest.approx(0.2)
