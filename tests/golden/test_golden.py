"""Whole scenarios through the control plane: in.yaml -> status (and IR) -> out.yaml.

Each directory under tests/golden/<stage>/ is one named scenario. The `status` stage
records the status of every object turnout owns plus load errors; the `ir` stage
records the compiled data-plane configuration. Run with `--update-golden` to rewrite
the expected files after an intended change, then review the diff; it also deletes
out.yaml files whose directory no longer has an in.yaml (renamed or removed scenarios).
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from tests.golden.tls_fixtures import materialize

from turnout import DEFAULT_CONTROLLER_NAME, graph
from turnout.ir import build as ir_build
from turnout.runtime import AddressAllocator, requested_addresses
from turnout.sources.files import FileSource
from turnout.status.compute import DataPlaneFeedback, StatusClock, compute

HERE = Path(__file__).parent
STAGES = ("status", "ir")
FIXED_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def _cases(stage: str) -> list[Path]:
    return sorted(p for p in (HERE / stage).iterdir() if (p / "in.yaml").exists())


def _orphans() -> list[Path]:
    return sorted(
        out
        for stage in STAGES
        for out in (HERE / stage).glob("*/out.yaml")
        if not (out.parent / "in.yaml").exists()
    )


def _run(case: Path, stage: str, tmp: Path) -> Any:
    source = FileSource([materialize(case / "in.yaml", tmp)], clock=lambda: FIXED_TIME)
    loaded = source.load()
    snapshot = loaded.snapshot
    allocator = AddressAllocator(ipaddress.ip_network("127.0.0.0/24"))
    keys = graph.gateways_of_our_classes(snapshot, DEFAULT_CONTROLLER_NAME)
    assignment = allocator.assign(requested_addresses(snapshot, keys))
    built = graph.build(
        snapshot,
        controller_name=DEFAULT_CONTROLLER_NAME,
        addresses=assignment.addresses,
        unusable_addresses=assignment.unusable,
    )
    if stage == "ir":
        config = ir_build.build(built, version=1)
        return msgspec.to_builtins(config)
    items = compute(
        snapshot,
        built,
        DataPlaneFeedback(applied=True),
        StatusClock(now=lambda: "2026-01-01T00:00:00Z"),
        ["Gateway", "HTTPRoute", "ReferenceGrant"],
        loaded.statuses(),
    )
    out: dict[str, Any] = {}
    if loaded.errors:
        out["errors"] = [
            str(e).replace(str(case) + "/", "").replace(str(tmp) + "/", "") for e in loaded.errors
        ]
    out["objects"] = [
        {
            "kind": item["kind"],
            "name": item["metadata"]["name"],
            **(
                {"namespace": item["metadata"]["namespace"]}
                if "namespace" in item["metadata"]
                else {}
            ),
            "status": item["status"],
        }
        for item in items
        if "status" in item
    ]
    return out


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)


@pytest.mark.parametrize(
    ("stage", "case"),
    [(stage, case) for stage in STAGES for case in _cases(stage)],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_golden(stage: str, case: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    actual = _dump(_run(case, stage, tmp_path))
    expected_file = case / "out.yaml"
    if request.config.getoption("--update-golden") or not expected_file.exists():
        expected_file.write_text(actual)
        if not request.config.getoption("--update-golden"):
            pytest.fail(f"{expected_file} did not exist; wrote it, review and commit it")
    assert actual == expected_file.read_text(), f"golden mismatch for {stage}/{case.name}"


def test_no_orphan_outputs(request: pytest.FixtureRequest) -> None:
    """Every out.yaml belongs to a scenario; --update-golden deletes the others."""
    orphans = _orphans()
    if request.config.getoption("--update-golden"):
        for out in orphans:
            out.unlink()
            if not any(out.parent.iterdir()):
                out.parent.rmdir()
        return
    assert not orphans, f"out.yaml without in.yaml (run --update-golden): {orphans}"
