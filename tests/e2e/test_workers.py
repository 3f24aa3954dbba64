"""`turnout run --workers N` end to end: worker processes, restarts, signals and limits."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    CLASS_YAML,
    Backend,
    Response,
    Turnout,
    request,
    service_yaml,
    wait_for,
)

GATEWAY = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: turnout
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
"""
)


def route_yaml(name: str, path: str, backend: str, section: str = "http") -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: {section}}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: {backend}, port: 8080}}]
"""


def write(directory: Path, name: str, text: str) -> None:
    tmp = directory / f".{name}.tmp"
    tmp.write_text(text)
    tmp.rename(directory / name)


def worker_pids(parent: int) -> list[int]:
    """Processes whose parent is ``parent`` (from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the ")".
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == parent:
            pids.append(int(entry))
    return sorted(pids)


def metric(t: Turnout, name: str) -> float:
    for line in t.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def conditions(item: dict, *path: str | int) -> dict[str, str]:
    node = item
    for p in path:
        node = node[p]  # type: ignore[index]
    return {c["type"]: c["status"] for c in node["conditions"]}


def route_accepted(t: Turnout, name: str) -> bool:
    for item in t.status():
        if item["kind"] == "HTTPRoute" and item["metadata"]["name"] == name:
            parents = item.get("status", {}).get("parents", [])
            return bool(parents) and conditions(parents[0]).get("Accepted") == "True"
    return False


@pytest.fixture
def turnout_workers() -> int | None:
    return 2


def test_every_worker_serves_and_a_killed_one_is_restarted(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    a, b = backends("a"), backends("b")
    write(tmp_path, "gw.yaml", GATEWAY + service_yaml("a", "default", [a]))
    write(tmp_path, "b.yaml", service_yaml("b", "default", [b]))
    write(tmp_path, "ra.yaml", route_yaml("ra", "/a", "a"))
    t = turnout(tmp_path)
    address = t.address("gw")
    pids = worker_pids(t.process.pid)
    assert len(pids) == 2
    assert metric(t, "turnout_workers") == 2
    assert metric(t, "turnout_worker_restarts_total") == 0

    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: metric(t, "turnout_worker_restarts_total") == 1, what="a restart")
    wait_for(lambda: len(worker_pids(t.process.pid)) == 2, what="two workers again")
    restarted = worker_pids(t.process.pid)
    assert pids[0] not in restarted and pids[1] in restarted
    logged = " ".join(t.logs().split())  # rich wraps long lines
    assert f"(pid {pids[0]}) exited with status -9; restarting" in logged
    # The new worker serves the current configuration: new connections (spread over
    # both workers by the kernel) all reach the route.
    wait_for(lambda: metric(t, "turnout_workers") == 2, what="the new worker")
    for _ in range(40):
        assert request(address, 8080, "/a").json()["pod"] == "a"

    # A later change reaches every worker before the route reports Accepted.
    write(tmp_path, "rb.yaml", route_yaml("rb", "/b", "b"))
    wait_for(lambda: route_accepted(t, "rb"), what="route rb Accepted")
    for _ in range(40):
        assert request(address, 8080, "/b").json()["pod"] == "b"
    assert metric(t, "turnout_worker_restarts_total") == 1


def test_new_listener_is_programmed_only_when_every_worker_serves_it(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    a = backends("a")
    write(tmp_path, "gw.yaml", GATEWAY + service_yaml("a", "default", [a]))
    write(tmp_path, "ra.yaml", route_yaml("ra", "/", "a"))
    t = turnout(tmp_path)
    address = t.address("gw")
    port = 8181
    extra = f"  - {{name: extra, port: {port}, protocol: HTTP}}\n"
    write(tmp_path, "gw.yaml", GATEWAY + extra + service_yaml("a", "default", [a]))
    write(tmp_path, "rx.yaml", route_yaml("rx", "/", "a", section="extra"))

    def programmed() -> bool:
        gw = t.find("Gateway", "gw")
        listeners = {ln["name"]: ln for ln in gw["status"]["listeners"]}
        return "extra" in listeners and conditions(listeners["extra"])["Programmed"] == "True"

    wait_for(programmed, what="listener extra Programmed")
    wait_for(lambda: route_accepted(t, "rx"), what="route rx Accepted")
    # Every new connection lands on some worker; none may be refused or unrouted.
    failures = 0
    for _ in range(60):
        try:
            if request(address, port, "/").status != 200:
                failures += 1
        except OSError:
            failures += 1
    assert failures == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_sigterm_drains_requests_in_flight_and_exits_0(
    tmp_path: Path,
    backends: Callable[..., Backend],
    turnout: Callable[..., Turnout],
    workers: int,
) -> None:
    a = backends("a")
    write(tmp_path, "gw.yaml", GATEWAY + service_yaml("a", "default", [a]))
    write(tmp_path, "ra.yaml", route_yaml("ra", "/", "a"))
    t = turnout(tmp_path, "--workers", str(workers), "--drain-timeout", "10")
    address = t.address("gw")
    assert request(address, 8080, "/").status == 200
    slow: list[Response | BaseException] = []

    def slow_request() -> None:
        try:
            slow.append(request(address, 8080, "/?delay=3s", timeout=15))
        except BaseException as exc:  # reported by the assertion below
            slow.append(exc)

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.5)  # let the request reach the backend
    t.process.send_signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            with socket.create_connection((address, 8080), timeout=1):
                return False
        except ConnectionRefusedError:
            return True

    wait_for(refused, timeout=3, what="new connections to be refused")
    thread.join(15)
    assert len(slow) == 1 and isinstance(slow[0], Response), slow
    assert slow[0].status == 200
    assert slow[0].headers.get("connection") == "close"  # no next request on it
    assert t.process.wait(15) == 0


def test_sighup_rereads_files_in_every_worker(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    a = backends("a")
    write(tmp_path, "gw.yaml", GATEWAY + service_yaml("a", "default", [a]))
    write(tmp_path, "ra.yaml", route_yaml("ra", "/", "a"))
    t = turnout(tmp_path)

    def version() -> int:
        return int(t.get("/config").json().get("version", 0))

    before = version()
    not_ready = 0
    for _ in range(10):  # readiness does not flap while reloads run
        t.process.send_signal(signal.SIGHUP)
        for _ in range(5):
            not_ready += t.get("/readyz").status != 200
    wait_for(lambda: version() > before, what="a reload after SIGHUP")
    assert not_ready == 0
    assert t.process.poll() is None
    assert request(t.address("gw"), 8080, "/").json()["pod"] == "a"
    assert metric(t, "turnout_worker_restarts_total") == 0  # workers ignore SIGHUP


def test_limit_flags_reach_every_worker(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    a = backends("a")
    write(tmp_path, "gw.yaml", GATEWAY + service_yaml("a", "default", [a]))
    write(tmp_path, "ra.yaml", route_yaml("ra", "/", "a"))
    t = turnout(tmp_path, "--max-header-count", "5", "--max-request-line", "200")
    address = t.address("gw")
    few = {f"x-h{i}": "v" for i in range(3)}
    many = {f"x-h{i}": "v" for i in range(8)}
    # Fresh connections, so that both workers answer some of them.
    for _ in range(10):
        assert request(address, 8080, "/", headers=few).status == 200
        assert request(address, 8080, "/", headers=many).status == 431
        assert request(address, 8080, "/" + "x" * 150).status == 200
        assert request(address, 8080, "/" + "x" * 300).status == 414


def test_default_limits_allow_what_the_flags_refuse(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    a = backends("a")
    write(tmp_path, "gw.yaml", GATEWAY + service_yaml("a", "default", [a]))
    write(tmp_path, "ra.yaml", route_yaml("ra", "/", "a"))
    t = turnout(tmp_path)
    address = t.address("gw")
    many = {f"x-h{i}": "v" for i in range(8)}
    assert request(address, 8080, "/", headers=many).status == 200
    assert request(address, 8080, "/" + "x" * 300).status == 200
