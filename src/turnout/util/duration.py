"""GEP-2257 Gateway API Durations ("500ms", "1h30m", "0s") as seconds."""

from __future__ import annotations

import re

_COMPONENT = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_DURATION = re.compile(r"(?:[0-9]{1,5}(?:h|ms|m|s)){1,4}")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError unless it matches ``^([0-9]{1,5}(h|m|s|ms)){1,4}$``.

    Like Go's time.ParseDuration on that subset: components add up, in any order.
    """
    if _DURATION.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a Gateway API Duration (e.g. 500ms, 1h30m, 0s)")
    return sum(int(n) * _SECONDS[unit] for n, unit in _COMPONENT.findall(text))


def optional_timeout(text: str | None) -> float | None:
    """A timeout field: unset or "0s" (any zero) means no timeout."""
    if text is None:
        return None
    seconds = parse_duration(text)
    return seconds or None
