"""End-to-end fixtures: real `turnout run` processes and real echo backends.

Everything binds to loopback: backends on 127.0.0.1 with free ports, each test's
Gateways on their own /28 of 127.0.0.0/8 handed to `--address-pool`, so tests never
collide with each other or with a user's processes.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_pools = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if predicate():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    address: str,
    port: int,
    path: str = "/",
    *,
    host: str | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> Response:
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        all_headers = dict(headers or {})
        if host is not None:
            all_headers["Host"] = host
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@dataclass
class Backend:
    name: str
    namespace: str
    port: int
    process: subprocess.Popen[bytes]
    address: str = "127.0.0.1"


@dataclass
class Turnout:
    directory: Path
    admin_port: int
    pool: str
    process: subprocess.Popen[bytes]
    log: Path
    extra: list[str] = field(default_factory=list)

    def get(self, path: str) -> Response:
        return request("127.0.0.1", self.admin_port, path)

    def status(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("/status").json()["items"]
        return items

    def find(self, kind: str, name: str, namespace: str | None = "default") -> dict[str, Any]:
        for item in self.status():
            meta = item["metadata"]
            if item["kind"] == kind and meta["name"] == name and meta.get("namespace") == namespace:
                return item
        raise AssertionError(f"{kind} {namespace}/{name} not in /status")

    def address(self, gateway: str, namespace: str = "default") -> str:
        item = self.find("Gateway", gateway, namespace)
        return str(item["status"]["addresses"][0]["value"])

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"turnout exited:\n{self.log.read_text()}")
            # The body too: the admin port was free when picked, but until turnout binds
            # it another process (a backend of a parallel run) may take it and answer.
            resp = self.get("/readyz")
            return resp.status == 200 and resp.body.strip() == b"ready"

        wait_for(ready, timeout, "turnout to become ready")

    def logs(self) -> str:
        return self.log.read_text()


def launch_backend(name: str, namespace: str = "default") -> Backend:
    """Start an echo backend on a free loopback port and wait until it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "turnout.demo.echo",
            "--listen",
            f"127.0.0.1:{port}",
            "--name",
            name,
            "--namespace",
            namespace,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    backend = Backend(name, namespace, port, proc)
    try:
        wait_for(lambda: request("127.0.0.1", port, "/").status == 200, what=f"backend {name}")
    except AssertionError:
        proc.kill()
        raise
    return backend


def stop_backends(started: list[Backend]) -> None:
    for backend in started:
        backend.process.terminate()
    for backend in started:
        backend.process.wait(10)


def launch_turnout(directory: Path, log: Path, *extra: str, workers: int | None = 0) -> Turnout:
    """Start `turnout run -f directory` on a /28 of loopback addresses of its own.

    ``workers`` is passed as --workers unless ``extra`` has it; None leaves turnout's
    default (one worker process per CPU). Most tests use 0 (the data plane in the
    control-plane process): it starts faster and uses less of a shared machine.
    """
    if workers is not None and not any(arg.startswith("--workers") for arg in extra):
        extra = (*extra, "--workers", str(workers))
    n = next(_pools) + (os.getpid() % 200) * 16
    pool = f"127.{100 + n // 4096 % 100}.{n // 16 % 256}.{(n % 16) * 16}/28"
    admin_port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "turnout",
                "run",
                "-f",
                str(directory),
                "--admin",
                f"127.0.0.1:{admin_port}",
                "--address-pool",
                pool,
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Turnout(directory, admin_port, pool, proc, log, list(extra))


def stop_turnouts(started: list[Turnout]) -> None:
    for t in started:
        if t.process.poll() is None:
            t.process.send_signal(signal.SIGTERM)
    for t in started:
        try:
            t.process.wait(10)
        except subprocess.TimeoutExpired:
            t.process.kill()
            t.process.wait(10)  # reaped, or Popen's ResourceWarning fails a later test


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def start(name: str, namespace: str = "default") -> Backend:
        backend = launch_backend(name, namespace)
        started.append(backend)
        return backend

    yield start
    stop_backends(started)


@pytest.fixture
def turnout_workers() -> int | None:
    """--workers for the `turnout` fixtures; a module overrides it (None: the default)."""
    return 0


@pytest.fixture
def turnout(
    tmp_path_factory: pytest.TempPathFactory, turnout_workers: int | None
) -> Iterator[Callable[..., Turnout]]:
    started: list[Turnout] = []
    # Not in tmp_path, which tests pass as the watched directory: every log line would
    # be a change to reload, and every reload logs a line.
    logs = tmp_path_factory.mktemp("turnout-logs")

    def start(directory: Path, *extra: str) -> Turnout:
        log = logs / f"turnout-{len(started)}.log"
        t = launch_turnout(directory, log, *extra, workers=turnout_workers)
        started.append(t)
        t.wait_ready()
        return t

    yield start
    stop_turnouts(started)


@pytest.fixture(scope="module")
def module_backends() -> Iterator[Callable[..., Backend]]:
    """Like `backends`, shared by the tests of one module (one set of processes)."""
    started: list[Backend] = []

    def start(name: str, namespace: str = "default") -> Backend:
        backend = launch_backend(name, namespace)
        started.append(backend)
        return backend

    yield start
    stop_backends(started)


@pytest.fixture(scope="module")
def module_turnout(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Turnout]]:
    """Like `turnout`, shared by the tests of one module."""
    started: list[Turnout] = []
    logs = tmp_path_factory.mktemp("turnout-logs")

    def start(directory: Path, *extra: str) -> Turnout:
        log = logs / f"turnout-{len(started)}.log"
        t = launch_turnout(directory, log, *extra, workers=0)
        started.append(t)
        t.wait_ready()
        return t

    yield start
    stop_turnouts(started)


CLASS_YAML = """---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: turnout}
spec: {controllerName: turnout.dev/gateway-controller}
"""

INFRA_GATEWAY_YAML = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: turnout
  listeners: [{name: http, port: 8080, protocol: HTTP}]
"""
)
"""The class and a Gateway `infra/gw` with one HTTP listener on 8080."""


def service_yaml(
    name: str,
    namespace: str,
    backends: list[Backend],
    port: int = 8080,
    ready: bool = True,
    app_protocol: str | None = None,
) -> str:
    """A Service and its EndpointSlice pointing at local backends.

    ``backends`` may be any objects with ``address`` and ``port`` (gRPC backends too);
    ``app_protocol`` sets the Service port's appProtocol (``kubernetes.io/h2c``...).
    """
    extra = "" if app_protocol is None else f", appProtocol: {app_protocol}"
    slices = []
    for i, b in enumerate(backends):
        slices.append(f"""---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-{i}
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {b.port}, protocol: TCP}}]
endpoints:
  - addresses: ["{b.address}"]
    conditions: {{ready: {str(ready).lower()}}}
""")
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  ports: [{{name: http, port: {port}, protocol: TCP{extra}}}]
""" + "".join(slices)
