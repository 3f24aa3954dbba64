"""`turnout status` against a stand-in admin API, and `turnout version`."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from turnout import __version__
from turnout.cli import cli

ITEMS: list[dict[str, Any]] = [
    {
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "team"},
        "status": {
            "parents": [
                {
                    "parentRef": {"name": "gw", "namespace": "infra", "sectionName": "http"},
                    "controllerName": "turnout.dev/gateway-controller",
                    "conditions": [
                        {"type": "Accepted", "status": "True", "reason": "Accepted", "message": ""}
                    ],
                }
            ]
        },
    }
]


ERRORS = ["routes.yaml#1: HTTPRoute team/r: spec.rules[0].matches[0].path.value: must start with /"]


class _Handler(BaseHTTPRequestHandler):
    body = json.dumps({"items": ITEMS, "errors": ERRORS}).encode()

    def do_GET(self) -> None:
        if self.path != "/status":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def admin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_table(runner: CliRunner, admin: str) -> None:
    result = runner.invoke(cli, ["status", "--admin", admin])
    assert result.exit_code == 0, result.output
    assert "HTTPRoute team/r parent infra/gw/http" in result.stdout
    assert result.stderr == f"error: {ERRORS[0]}\n"


def test_json(runner: CliRunner, admin: str) -> None:
    result = runner.invoke(cli, ["status", "--admin", admin, "-o", "json"])
    assert json.loads(result.stdout)["items"] == ITEMS


def test_unreachable(runner: CliRunner) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = runner.invoke(cli, ["status", "--admin", f"127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert f"cannot reach the admin API at http://127.0.0.1:{port}/status" in result.stderr


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["version"])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"turnout {__version__} ")
