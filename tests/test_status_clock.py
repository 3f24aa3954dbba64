"""lastTransitionTime across reloads: kept while a condition holds, forgotten with its object.

The StatusClock remembers, per object, when each condition last changed status. Route
status items that did not change are reused without being stamped again (a cache), so
the clock must carry their times over; and it must forget objects that are gone (it
kept them all, which grew the control plane with every route ever created:
tests/test_leaks_control_plane.py).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from tests.test_leaks_control_plane import GATEWAY, route, write
from turnout.runtime import Pipeline, RunOptions
from turnout.status.compute import DataPlaneFeedback, StatusClock


def _times(pipeline: Pipeline, changed: set[Path] | None) -> dict[str, dict[str, Any]]:
    """Per object name: condition type -> (lastTransitionTime, observedGeneration)."""
    loaded, built, _ = pipeline.compile(changed)
    items = pipeline.status(loaded, built, DataPlaneFeedback(applied=True))
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        status = item.get("status", {})
        conditions = [c for p in status.get("parents", []) for c in p["conditions"]]
        conditions += status.get("conditions", [])
        for listener in status.get("listeners", []):
            conditions += [
                {**c, "type": f"{listener['name']}/{c['type']}"} for c in listener["conditions"]
            ]
        out[item["metadata"]["name"]] = {
            c["type"]: (c["lastTransitionTime"], c["observedGeneration"]) for c in conditions
        }
    return out


def _pipeline(tmp_path: Path) -> Pipeline:
    ticks = itertools.count(1)
    return Pipeline(RunOptions(paths=(tmp_path,)), clock=StatusClock(lambda: f"T{next(ticks)}"))


def test_reused_route_status_keeps_its_times_until_a_condition_changes(tmp_path: Path) -> None:
    write(tmp_path / "gw.yaml", GATEWAY)
    write(tmp_path / "a.yaml", route("a", "/a", 0))
    pipeline = _pipeline(tmp_path)
    first = _times(pipeline, None)["a"]
    assert first["Accepted"][1] == 1
    # Other objects change: route a's status item is reused, unstamped, three times.
    for name in ("b", "c", "d"):
        write(tmp_path / f"{name}.yaml", route(name, f"/{name}", 0))
        assert _times(pipeline, {tmp_path / f"{name}.yaml"})["a"] == first
    # Its spec changes (generation 2) and its conditions hold: the times stay.
    write(tmp_path / "a.yaml", route("a", "/a2", 0))
    edited = _times(pipeline, {tmp_path / "a.yaml"})["a"]
    assert {kind: when for kind, (when, _) in edited.items()} == {
        kind: when for kind, (when, _) in first.items()
    }
    assert edited["Accepted"][1] == 2


def test_a_recreated_route_and_a_renamed_listener_start_afresh(tmp_path: Path) -> None:
    write(tmp_path / "gw.yaml", GATEWAY)
    write(tmp_path / "a.yaml", route("a", "/a", 0))
    pipeline = _pipeline(tmp_path)
    first = _times(pipeline, None)
    (tmp_path / "a.yaml").unlink()
    assert "a" not in _times(pipeline, {tmp_path / "a.yaml"})
    write(tmp_path / "a.yaml", route("a", "/a", 0))
    again = _times(pipeline, {tmp_path / "a.yaml"})
    assert again["a"]["Accepted"][0] != first["a"]["Accepted"][0]  # a new object, new times
    # A listener goes away and comes back: its conditions are new too; the others stay.
    listener = "    - {name: extra, port: 80, protocol: HTTP, hostname: x.example.com}\n"
    write(tmp_path / "gw.yaml", GATEWAY + listener)
    with_extra = _times(pipeline, {tmp_path / "gw.yaml"})["gw"]
    write(tmp_path / "gw.yaml", GATEWAY)
    assert "extra/Accepted" not in _times(pipeline, {tmp_path / "gw.yaml"})["gw"]
    write(tmp_path / "gw.yaml", GATEWAY + listener)
    back = _times(pipeline, {tmp_path / "gw.yaml"})["gw"]
    assert back["extra/Accepted"][0] != with_extra["extra/Accepted"][0]
    assert (
        back["http/Accepted"][0]
        == with_extra["http/Accepted"][0]
        == first["gw"]["http/Accepted"][0]
    )
