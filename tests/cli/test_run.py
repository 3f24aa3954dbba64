"""`turnout run`: option parsing into RunOptions."""

from __future__ import annotations

import gc
import ipaddress
from pathlib import Path

import pytest
from click.testing import CliRunner

from turnout import runtime
from turnout.cli import cli, default_workers
from turnout.dataplane.limits import Limits


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[runtime.RunOptions]:
    calls: list[runtime.RunOptions] = []
    monkeypatch.setattr(runtime, "run_standalone", calls.append)
    return calls


def test_defaults(runner: CliRunner, captured: list[runtime.RunOptions], tmp_path: Path) -> None:
    result = runner.invoke(cli, ["run", "-f", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert captured == [runtime.RunOptions(paths=(tmp_path,), workers=default_workers())]
    assert captured[0].workers >= 1  # one worker process per usable CPU
    assert captured[0].limits == Limits()
    assert captured[0].drain_timeout == 5.0


def test_all_options(runner: CliRunner, captured: list[runtime.RunOptions], tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b.yaml"
    a.mkdir()
    b.write_text("")
    args = ["run", "-f", str(a), "-f", str(b), "--admin", "[::1]:9000"]
    args += ["--address-pool", "127.0.7.0/24", "--port-offset", "8000"]
    args += ["--controller-name", "example.com/x", "--log-level", "DEBUG"]
    args += ["--workers", "3", "--drain-timeout", "2.5", "--max-request-line", "100"]
    args += ["--resync-interval", "30"]
    args += ["--max-header-bytes", "2000", "--max-header-count", "7", "--header-timeout", "1.5"]
    args += ["--idle-timeout", "9", "--max-connections", "50"]
    args += ["--max-upstream-header-bytes", "4096", "--retry-buffer-bytes", "1024"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert captured == [
        runtime.RunOptions(
            paths=(a, b),
            admin_host="::1",
            admin_port=9000,
            address_pool=ipaddress.ip_network("127.0.7.0/24"),
            port_offset=8000,
            controller_name="example.com/x",
            workers=3,
            limits=Limits(
                max_request_line=100,
                max_head_bytes=2000,
                max_header_fields=7,
                header_timeout=1.5,
                idle_timeout=9.0,
                max_connections=50,
                max_upstream_head_bytes=4096,
                retry_buffer_bytes=1024,
            ),
            drain_timeout=2.5,
            resync_interval=30.0,
            log_level="debug",
        )
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "-1"],
        ["--max-connections", "0"],
        ["--header-timeout", "0"],
        ["--drain-timeout", "-1"],
        ["--resync-interval", "-5"],
        ["--idle-timeout", "soon"],
    ],
)
def test_bad_limits_are_refused(
    runner: CliRunner, captured: list[runtime.RunOptions], tmp_path: Path, args: list[str]
) -> None:
    result = runner.invoke(cli, ["run", "-f", str(tmp_path), *args])
    assert result.exit_code == 2
    assert args[0] in result.output
    assert captured == []


@pytest.mark.parametrize(
    ("admin", "host", "port"),
    [
        ("localhost:1", "localhost", 1),
        ("127.1.2.3:0", "127.1.2.3", 0),
        ("[::1]:65535", "::1", 65535),
    ],
)
def test_admin_accepted(
    runner: CliRunner,
    captured: list[runtime.RunOptions],
    tmp_path: Path,
    admin: str,
    host: str,
    port: int,
) -> None:
    assert runner.invoke(cli, ["run", "-f", str(tmp_path), "--admin", admin]).exit_code == 0
    assert (captured[0].admin_host, captured[0].admin_port) == (host, port)


@pytest.mark.parametrize(
    ("admin", "message"),
    [
        ("9901", "is not HOST:PORT"),
        (":9901", "is not HOST:PORT"),
        ("127.0.0.1:http", "port must be a number"),
        ("127.0.0.1:65536", "port must be a number"),
        ("::1:9901", "in brackets"),
        ("0.0.0.0:9901", "loopback"),
        ("10.1.2.3:9901", "loopback"),
        ("example.com:9901", "loopback"),
    ],
)
def test_admin_rejected(
    runner: CliRunner,
    captured: list[runtime.RunOptions],
    tmp_path: Path,
    admin: str,
    message: str,
) -> None:
    result = runner.invoke(cli, ["run", "-f", str(tmp_path), "--admin", admin])
    assert result.exit_code == 2
    assert message in result.stderr
    assert captured == []


def test_bad_log_level(
    runner: CliRunner, captured: list[runtime.RunOptions], tmp_path: Path
) -> None:
    result = runner.invoke(cli, ["run", "-f", str(tmp_path), "--log-level", "loud"])
    assert result.exit_code == 2
    assert captured == []


def test_bind_error_is_a_clean_message(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fail(options: runtime.RunOptions) -> None:
        raise OSError(98, "address already in use")

    monkeypatch.setattr(runtime, "run_standalone", fail)
    result = runner.invoke(cli, ["run", "-f", str(tmp_path)])
    assert result.exit_code == 1
    assert "address already in use" in result.stderr


def test_every_limit_has_a_run_flag() -> None:
    from turnout.cli import _LIMIT_FLAGS

    flagged = {name for name, *_ in _LIMIT_FLAGS}
    missing = set(Limits.__dataclass_fields__) - flagged
    assert not missing, f"add a `turnout run` flag to cli._LIMIT_FLAGS for {sorted(missing)}"
    assert flagged <= set(Limits.__dataclass_fields__)


def test_the_start_up_pause_of_garbage_collection_ends_with_the_command(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enabled_while_running: list[bool] = []
    monkeypatch.setattr(
        runtime, "run_standalone", lambda options: enabled_while_running.append(gc.isenabled())
    )
    result = runner.invoke(cli, ["run", "-f", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert enabled_while_running == [False]  # paused for the start-up (util.collector)
    assert gc.isenabled()  # and on again when the command returns, whatever happened
