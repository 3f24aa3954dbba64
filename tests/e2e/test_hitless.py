"""Hitless changes: 100 route edits under load through `turnout run --workers 2`.

While keep-alive clients drive traffic, the files change 100 times: routes are added
and removed, rules reordered, backends and weights changed, EndpointSlice endpoints
rotated. No client request may fail (non-2xx or socket error), a streaming response
opened before the edits must complete, a WebSocket opened before the edits must keep
echoing through and after them, and a newly added route must serve every request once
/status reports it Accepted.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import CLASS_YAML, Backend, Turnout, wait_for
from tests.e2e.conftest import service_yaml as single_service_yaml
from tests.e2e.test_features_websocket import WebSocketEcho, start_ws_echo

EDITS = 100
SERVICES = ("s1", "s2", "s3")

GATEWAY = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: turnout
  listeners: [{name: http, port: 8080, protocol: HTTP}]
"""
)


@pytest.fixture
def turnout_workers() -> int | None:
    return 2


def write(directory: Path, name: str, text: str) -> None:
    tmp = directory / f".{name}.tmp"
    tmp.write_text(text)
    tmp.rename(directory / name)


def service_yaml(name: str, backends: list[Backend]) -> str:
    # The backends share an address and differ by port, and a slice has one port list:
    # one slice per backend (Kubernetes allows many slices per Service).
    slices = "".join(
        f"""---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-{b.port}, namespace: default,
  labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: http, port: {b.port}}}]
endpoints:
- addresses: [{b.address}]
"""
        for b in backends
    )
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec: {{ports: [{{name: http, port: 8080}}]}}
{slices}"""


def route_yaml(name: str, rules: list[tuple[str, list[tuple[str, int]]]]) -> str:
    lines = []
    for path, refs in rules:
        backend_refs = ", ".join(
            f"{{name: {svc}, port: 8080, weight: {weight}}}" for svc, weight in refs
        )
        lines.append(
            f"  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n"
            f"    backendRefs: [{backend_refs}]\n"
        )
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
{"".join(lines)}"""


@dataclass
class LoadStats:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def drive(address: str, paths: list[str], stop: threading.Event, stats: LoadStats) -> None:
    """Keep-alive GETs until ``stop``; a fresh connection every 40 requests."""
    conn = http.client.HTTPConnection(address, 8080, timeout=10)
    n = 0
    try:
        while not stop.is_set():
            path = paths[n % len(paths)]
            n += 1
            if n % 40 == 0:
                conn.close()
                conn = http.client.HTTPConnection(address, 8080, timeout=10)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                ok = 200 <= response.status < 300
                problem = None if ok else f"{path}: {response.status} {body[:120]!r}"
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{path}: {exc!r}"
                conn.close()
                conn = http.client.HTTPConnection(address, 8080, timeout=10)
            with stats.lock:
                stats.requests += 1
                if problem is not None:
                    stats.failures.append(problem)
    finally:
        conn.close()


def stream(address: str, out: dict[str, object]) -> None:
    """A long chunked response, read to its end."""
    conn = http.client.HTTPConnection(address, 8080, timeout=30)
    try:
        conn.request("GET", "/load/stream?stream=150&interval=40ms")
        response = conn.getresponse()
        out["status"] = response.status
        out["started"] = time.monotonic()
        lines = response.read().splitlines()
        out["chunks"] = [json.loads(line)["chunk"] for line in lines]
        out["ended"] = time.monotonic()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        out["error"] = repr(exc)
    finally:
        conn.close()


def route_accepted(t: Turnout, name: str) -> bool:
    for item in t.status():
        if item["kind"] == "HTTPRoute" and item["metadata"]["name"] == name:
            for parent in item.get("status", {}).get("parents", []):
                conds = {c["type"]: c["status"] for c in parent["conditions"]}
                return conds.get("Accepted") == "True" and conds.get("ResolvedRefs") == "True"
    return False


class Editor:
    """Applies the 100 edits and checks each new route once it is Accepted."""

    def __init__(self, t: Turnout, backends: list[Backend], rng: random.Random) -> None:
        self.t = t
        self.dir = t.directory
        self.backends = backends
        self.rng = rng
        self.endpoints = {svc: [i % len(backends)] for i, svc in enumerate(SERVICES)}
        self.load_refs: list[tuple[str, int]] = [("s1", 1)]
        self.reordered = False
        self.added: list[str] = []
        self.serial = 0
        self.new_route_failures: list[str] = []
        self.new_route_requests = 0
        self.kinds: list[str] = []

    def write_stable(self) -> None:
        rules = [("/load", self.load_refs), ("/other", [("s2", 1)]), ("/ws", [("ws", 1)])]
        if self.reordered:
            rules.reverse()
        write(self.dir, "stable.yaml", route_yaml("stable", rules))

    def write_service(self, svc: str) -> None:
        chosen = [self.backends[i] for i in self.endpoints[svc]]
        write(self.dir, f"svc-{svc}.yaml", service_yaml(svc, chosen))

    def edit(self, kind: str) -> None:
        self.kinds.append(kind)
        rng = self.rng
        if kind == "add":
            self.serial += 1
            name = f"new-{self.serial}"
            svc = rng.choice(SERVICES)
            write(self.dir, f"{name}.yaml", route_yaml(name, [(f"/{name}", [(svc, 1)])]))
            wait_for(lambda: route_accepted(self.t, name), what=f"{name} Accepted")
            self.check_new_route(name)
            self.added.append(name)
        elif kind == "remove" and self.added:
            name = self.added.pop(rng.randrange(len(self.added)))
            (self.dir / f"{name}.yaml").unlink()
        elif kind == "reorder":
            self.reordered = not self.reordered
            self.write_stable()
        elif kind == "weights":
            # Every Service has endpoints, and at least one weight is not 0.
            refs = [(svc, rng.randrange(0, 4)) for svc in rng.sample(SERVICES, 2)]
            if all(weight == 0 for _, weight in refs):
                refs[0] = (refs[0][0], 1)
            self.load_refs = refs
            self.write_stable()
        elif kind == "backend":
            self.load_refs = [(rng.choice(SERVICES), 1)]
            self.write_stable()
        else:  # rotate: a Service's endpoints move to other (live) backends
            svc = rng.choice(SERVICES)
            count = rng.randrange(1, 3)
            self.endpoints[svc] = rng.sample(range(len(self.backends)), count)
            self.write_service(svc)

    def check_new_route(self, name: str) -> None:
        """Right after Accepted: fresh connections (either worker) and keep-alive ones."""
        address = self.t.address("gw")
        keep = http.client.HTTPConnection(address, 8080, timeout=10)
        try:
            for i in range(10):
                conn = keep if i % 2 else http.client.HTTPConnection(address, 8080, timeout=10)
                try:
                    conn.request("GET", f"/{name}")
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        self.new_route_failures.append(f"{name}: {response.status}")
                except (OSError, http.client.HTTPException) as exc:
                    self.new_route_failures.append(f"{name}: {exc!r}")
                finally:
                    if conn is not keep:
                        conn.close()
                self.new_route_requests += 1
        finally:
            keep.close()


@pytest.fixture
def ws_backend() -> Iterator[WebSocketEcho]:
    echo = start_ws_echo()
    yield echo
    echo.server.shutdown()


def ws_echoes(ws: ClientConnection, text: str) -> bool:
    try:
        ws.send(text)
        return ws.recv(timeout=5) == text
    except Exception:  # websockets raises its own ConnectionClosed, TimeoutError...
        return False


def test_hundred_edits_under_load_fail_no_request(
    tmp_path: Path,
    backends: Callable[..., Backend],
    turnout: Callable[..., Turnout],
    ws_backend: WebSocketEcho,
) -> None:
    pool = [backends(f"b{i}") for i in range(4)]
    write(tmp_path, "gw.yaml", GATEWAY)
    ws_service = single_service_yaml("ws", "default", [ws_backend], app_protocol="kubernetes.io/ws")  # type: ignore[list-item]
    write(tmp_path, "svc-ws.yaml", ws_service)
    t = turnout(tmp_path)
    editor = Editor(t, pool, random.Random(6))
    for svc in SERVICES:
        editor.write_service(svc)
    editor.write_stable()
    wait_for(lambda: route_accepted(t, "stable"), what="route stable Accepted")
    address = t.address("gw")

    stop = threading.Event()
    stats = LoadStats()
    loaders = [
        threading.Thread(target=drive, args=(address, ["/load", "/other"], stop, stats))
        for _ in range(4)
    ]
    streamed: dict[str, object] = {}
    streamer = threading.Thread(target=stream, args=(address, streamed))
    streamer.start()
    for thread in loaders:
        thread.start()
    wait_for(lambda: "started" in streamed or "error" in streamed, what="the stream")
    kinds = ["add", "rotate", "weights", "reorder", "backend", "add", "remove", "rotate"]
    ws_failures: list[str] = []
    try:
        with connect(f"ws://{address}:8080/ws", open_timeout=10) as ws:
            if not ws_echoes(ws, "before"):
                ws_failures.append("before")
            edits_started = time.monotonic()
            for i in range(EDITS):
                editor.edit(kinds[i % len(kinds)])
                time.sleep(0.02)  # some edits land in one reload, most in their own
                if i % 10 == 9 and not ws_echoes(ws, f"edit {i}"):
                    ws_failures.append(f"edit {i}")
            edits_ended = time.monotonic()
            time.sleep(0.5)  # traffic after the last change
            if not ws_echoes(ws, "after"):
                ws_failures.append("after")
    finally:
        stop.set()
        for thread in loaders:
            thread.join(30)
        streamer.join(30)

    assert stats.failures == [], stats.failures[:10]
    assert stats.requests > 200, stats.requests  # the load really ran during the edits
    assert editor.new_route_failures == [], editor.new_route_failures
    assert editor.new_route_requests == 10 * editor.kinds.count("add")
    assert ws_failures == []
    assert ws_backend.paths == ["/ws"]  # one WebSocket, kept across all edits
    assert "error" not in streamed, streamed.get("error")
    assert streamed["status"] == 200
    assert streamed["chunks"] == list(range(150))
    started, ended = streamed["started"], streamed["ended"]
    assert isinstance(started, float) and isinstance(ended, float)
    assert started < edits_started and ended > edits_started + 1  # open across edits
    print(
        f"\n{EDITS} edits in {edits_ended - edits_started:.1f} s, {stats.requests} requests, "
        f"stream open for {ended - started:.1f} s"
    )
