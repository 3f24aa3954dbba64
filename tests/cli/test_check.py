"""`turnout check`: options reach runtime.check; output formats; exit codes."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from turnout import runtime
from turnout.cli import cli


def _cond(type_: str, status: str = "True", reason: str = "Ok") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": f"{type_} msg"}


def _gateway(programmed: str = "True") -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "status": {
            "conditions": [_cond("Accepted"), _cond("Programmed", programmed, "Invalid")],
            "listeners": [{"name": "http", "attachedRoutes": 0, "conditions": [_cond("Accepted")]}],
        },
    }


class FakeCheck:
    def __init__(self, result: runtime.CheckResult) -> None:
        self.result = result
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, paths: Any, **kwargs: Any) -> runtime.CheckResult:
        self.calls.append((paths, kwargs))
        return self.result


def _fake(
    monkeypatch: pytest.MonkeyPatch,
    items: list[dict[str, Any]] | None = None,
    *,
    errors: list[str] | None = None,
    warnings: list[str] | None = None,
    ignored: list[str] | None = None,
) -> FakeCheck:
    fake = FakeCheck(
        runtime.CheckResult(
            items=[_gateway()] if items is None else items,
            errors=errors or [],
            warnings=warnings or [],
            ignored=ignored or [],
        )
    )
    monkeypatch.setattr(runtime, "check", fake)
    return fake


def test_passes_options(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = _fake(monkeypatch)
    other = tmp_path / "more.yaml"
    other.write_text("")
    result = runner.invoke(
        cli,
        [
            "check",
            "-f",
            str(tmp_path),
            "--filename",
            str(other),
            "--controller-name",
            "example.com/gw",
            "--address-pool",
            "127.0.5.0/28",
            "--port-offset",
            "8000",
        ],
    )
    assert result.exit_code == 0, result.output
    assert fake.calls == [
        (
            (tmp_path, other),
            {
                "controller_name": "example.com/gw",
                "address_pool": ipaddress.ip_network("127.0.5.0/28"),
                "port_offset": 8000,
            },
        )
    ]


def test_defaults(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = _fake(monkeypatch)
    assert runner.invoke(cli, ["check", "-f", str(tmp_path)]).exit_code == 0
    assert fake.calls[0][1] == {
        "controller_name": "turnout.dev/gateway-controller",
        "address_pool": ipaddress.ip_network("127.0.0.0/24"),
        "port_offset": 0,
    }


def test_table_all_true_exit_0(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake(monkeypatch)
    result = runner.invoke(cli, ["check", "-f", str(tmp_path)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["OBJECT", "CONDITION", "STATUS", "REASON", "MESSAGE"]
    assert any(line.startswith("Gateway infra/gw listener http") for line in lines)
    assert len(lines) == 4  # header + 3 conditions
    assert result.stderr == ""


def test_condition_not_true_exit_1(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake(monkeypatch, [_gateway(programmed="False")])
    result = runner.invoke(cli, ["check", "-f", str(tmp_path)])
    assert result.exit_code == 1
    assert "Invalid" in result.stdout
    assert "1 condition(s) not True" in result.stderr


def test_load_error_exit_1_each_on_its_own_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    long = "gw.yaml#0: Gateway infra/gw: spec.listeners[0].port: " + "x" * 150
    _fake(monkeypatch, errors=[long, "b.yaml#1: bad"], warnings=["c.yaml#0: unknown field"])
    result = runner.invoke(cli, ["check", "-f", str(tmp_path)])
    assert result.exit_code == 1
    stderr = result.stderr.splitlines()
    # Not wrapped, and "[0]" not eaten as rich markup.
    assert stderr[:3] == [
        f"error: {long}",
        "error: b.yaml#1: bad",
        "warning: c.yaml#0: unknown field",
    ]


def test_verbose_lists_ignored(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake(monkeypatch, ignored=["a.yaml#2: apps/v1 Deployment default/web"])
    quiet = runner.invoke(cli, ["check", "-f", str(tmp_path)])
    assert "Deployment" not in quiet.stderr
    verbose = runner.invoke(cli, ["check", "-v", "-f", str(tmp_path)])
    assert verbose.exit_code == 0
    assert "ignored: a.yaml#2: apps/v1 Deployment default/web" in verbose.stderr


def test_json_output(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake(monkeypatch)
    result = runner.invoke(cli, ["check", "-o", "json", "-f", str(tmp_path)])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"apiVersion": "v1", "kind": "List", "items": [_gateway()]}


def test_yaml_output_exit_1_still_prints(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake(monkeypatch, [_gateway(), _gateway("Unknown")])
    result = runner.invoke(cli, ["check", "-o", "yaml", "-f", str(tmp_path)])
    assert result.exit_code == 1
    assert list(yaml.safe_load_all(result.stdout)) == [_gateway(), _gateway("Unknown")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--address-pool", "127.0.0.1/24"], "has host bits set"),
        (["--address-pool", "nope"], "not a network in CIDR notation"),
        (["--port-offset", "-1"], "-1"),
        (["--port-offset", "70000"], "70000"),
        (["-o", "xml"], "xml"),
    ],
)
def test_bad_options_exit_2(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    fake = _fake(monkeypatch)
    result = runner.invoke(cli, ["check", "-f", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert fake.calls == []


def test_missing_path_exit_2(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch)
    result = runner.invoke(cli, ["check", "-f", "/nonexistent/dir"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_filename_required(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["check"]).exit_code == 2
