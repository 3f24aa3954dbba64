"""RE2 checks for the RegularExpression matches of every route kind.

Part of the graph (Snapshot -> **graph** -> status, IR). The data plane compiles
patterns with google-re2 (linear time, no backtracking), so the graph checks them with
the same library and reports a bad one in the route's status instead of letting the
data plane fail on it.
"""

from __future__ import annotations

import re2

_QUIET_RE2 = re2.Options()
_QUIET_RE2.log_errors = False  # the error is reported in the route's status instead


def bad_regex(pattern: str, field: str) -> list[str]:
    """[] when `pattern` is valid RE2, else one problem naming `field`."""
    try:
        re2.compile(pattern, _QUIET_RE2)
    except re2.error as exc:
        # google-re2 carries the message as bytes
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        return [f"{field}: not a valid RE2 regular expression ({detail})"]
    return []
