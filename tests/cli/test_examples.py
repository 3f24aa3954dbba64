"""`turnout check` on the shipped examples: every object works, as the README says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from turnout.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("episode", ["starwars", "starwars-episode-iv"])
def test_starwars_checks_clean(runner: CliRunner, episode: str) -> None:
    result = runner.invoke(cli, ["check", "-o", "json", "-f", str(EXAMPLES / episode)])
    assert result.stderr == ""
    assert result.exit_code == 0
    items = json.loads(result.stdout)["items"]
    kinds = sorted((i["kind"], i["metadata"]["name"]) for i in items)
    assert kinds == [
        ("Gateway", "deathstar-gateway"),
        ("GatewayClass", "turnout"),
        ("HTTPRoute", "deathstar"),
        ("HTTPRoute", "eye-of-palpatine"),
    ]
    gateway = next(i for i in items if i["kind"] == "Gateway")
    assert gateway["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert {ln["name"]: ln["attachedRoutes"] for ln in gateway["status"]["listeners"]} == {
        "deathstar": 1,
        "eye-of-palpatine": 1,
    }
    for route in (i for i in items if i["kind"] == "HTTPRoute"):
        (parent,) = route["status"]["parents"]
        assert parent["parentRef"]["sectionName"] == route["metadata"]["name"]
        assert {c["type"]: c["status"] for c in parent["conditions"]} == {
            "Accepted": "True",
            "ResolvedRefs": "True",
        }


def test_grpc_example_checks_clean(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", "-o", "json", "-f", str(EXAMPLES / "grpc")])
    assert result.stderr == ""
    assert result.exit_code == 0
    items = json.loads(result.stdout)["items"]
    gateway = next(i for i in items if i["kind"] == "Gateway")
    (listener,) = gateway["status"]["listeners"]
    assert listener["attachedRoutes"] == 1
    assert {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"} in listener["supportedKinds"]
    route = next(i for i in items if i["kind"] == "GRPCRoute")
    (parent,) = route["status"]["parents"]
    assert {c["type"]: c["status"] for c in parent["conditions"]} == {
        "Accepted": "True",
        "ResolvedRefs": "True",
    }
