"""Control-plane scale: `turnout run` with 1,000 and 5,000 HTTPRoutes from files.

    python bench/scale.py                           # N = 1000,5000; 50 changes each
    python bench/scale.py --routes 5000 --profile   # also cProfile a second run; top hotspots
    python bench/scale.py --routes 5000 --grpc-routes 50   # and 50 GRPCRoutes on the listener
    python bench/scale.py --routes 5000 --change secret    # the change: a certificate rotated
    python bench/scale.py --routes 5000 --change grant     # the change: a ReferenceGrant
    python bench/scale.py --routes 5000 --change namespace # the change: Namespace labels
    python bench/scale.py --routes 5000 --change gateway   # the change: a Gateway listener
    make bench-scale                                # the same, appending to bench/RESULTS.md

For each N it writes the manifests of ``bench/manifests.py`` into a temp dir (one file per
HTTPRoute with its Service and EndpointSlice, all pointing at one origin), starts
``python -m turnout run -f DIR --admin 127.0.0.1:PORT --port-offset ...`` in its own process
group, and measures:

* **ready**: from process start until every HTTPRoute is Accepted in ``/status`` *and* the
  data plane answers 200 for the last route (polled with real requests);
* **change**: one route file rewritten atomically (write + rename) to add a response header
  ``x-bench-gen: k``; time until a real request shows ``k`` (p50/p99 over ``--changes``).
  With ``--change secret`` the Gateway also has an HTTPS listener (hostname
  ``secure.bench.test``, no routes) whose Secret is rewritten with another key pair;
  time until a TLS handshake there presents the new certificate. With ``--change grant``
  the last route's backendRefs name a Service in namespace ``shared`` and a
  ReferenceGrant there permits it (or, every other change, only another namespace's
  routes); time until a request to that route gets 200 (or 500: RefNotPermitted). With
  ``--change namespace`` the listener admits namespaces labelled ``bench-routes: "yes"``
  (the bench namespace is), the last route (with its Service) is in namespace ``team``,
  and each change flips that Namespace's label; time until the route answers 200 (or
  404, detached); with ``--change gateway`` each change adds or removes a second listener
  (port 8081 + offset or the next free one, hostname ``extra.bench.test``, which no route's hostnames match) on
  the Gateway itself: a full rebuild, not a patch; time until that port answers 404 (or
  refuses connections);
* ``--grpc-routes G`` adds G GRPCRoutes (hostnames of their own, so no GEP-1016 conflict)
  on the same listener as the HTTPRoutes;
* **teardown**: every route file deleted; time until ``/status`` lists no HTTPRoute;
* **RSS**: VmRSS / VmHWM of the turnout process (the control plane) from /proc after
  loading and after changes, and of each data-plane worker (every process below it):
  VmRSS once loaded and VmHWM at the end, one figure per worker.

Targets (issue "A data plane as fast as nginx"): 1,000 routes ready within 1 s, 5,000
within 5 s, one change at 5,000 within 200 ms p99, memory < 300 MB.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import functools
import http.client
import json
import os
import platform
import pstats
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path[:0] = [str(HERE), str(SRC)]

import manifests  # noqa: E402
from run import Processes, free_port, tree_label, wait_listening  # noqa: E402

READY_TIMEOUT = 180.0
CHANGE_TIMEOUT = 30.0
TEARDOWN_TIMEOUT = 120.0
TARGETS = {1000: 1.0, 5000: 5.0}  # seconds until ready
CHANGE_TARGET_MS = 200.0
RSS_TARGET_MB = 300.0


@dataclass
class Result:
    n: int
    startup_floor_s: float = 0.0  # same process start with 0 routes
    admin_up_s: float = 0.0
    accepted_s: float = 0.0
    ready_s: float = 0.0
    changes_ms: list[float] = field(default_factory=list)
    change_timeouts: int = 0
    teardown_s: float = 0.0
    rss_loaded_mb: float = 0.0
    rss_after_changes_mb: float = 0.0
    hwm_mb: float = 0.0
    workers_loaded_mb: list[float] = field(default_factory=list)  # VmRSS, per worker
    workers_hwm_mb: list[float] = field(default_factory=list)  # VmHWM at the end


def proc_mem_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (its data-plane workers), from /proc, in pid order."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return sorted(found)


def workers_mem_mb(pid: int) -> list[tuple[float, float]]:
    """(VmRSS, VmHWM) in MB of each process below ``pid``."""
    out = []
    for child in descendants(pid):
        try:
            out.append(proc_mem_mb(child))
        except OSError:
            continue
    return out


class Client:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port, reopened after errors."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.getheader("connection", "").lower() == "close":
            self.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def routes_accepted(status_body: bytes) -> tuple[int, int]:
    """(HTTPRoutes listed, HTTPRoutes Accepted=True on every parent) in a /status answer."""
    items = json.loads(status_body)["items"]
    listed = accepted = 0
    for item in items:
        if item.get("kind") != "HTTPRoute":
            continue
        listed += 1
        parents = item.get("status", {}).get("parents", [])
        if parents and all(
            any(c["type"] == "Accepted" and c["status"] == "True" for c in p["conditions"])
            for p in parents
        ):
            accepted += 1
    return listed, accepted


class Turnout:
    """`python -m turnout run` on a directory, in its own process group."""

    def __init__(self, procs: Processes, directory: Path, log: Path, profile: Path | None) -> None:
        self.admin_port = free_port()
        self.proxy_port = free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
        python = [sys.executable]
        if profile is not None:
            python += ["-m", "cProfile", "-o", str(profile)]
        command = [
            *python,
            "-m",
            "turnout",
            "run",
            "-f",
            str(directory),
            "--admin",
            f"127.0.0.1:{self.admin_port}",
            "--port-offset",
            str(self.proxy_port - manifests.LISTENER_PORT),
            "--log-level",
            "warning",
        ]
        self.started = time.monotonic()
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        procs.procs.append(self.proc)
        self.admin = Client(self.admin_port)
        self.data = Client(self.proxy_port)

    def status(self) -> tuple[int, int] | None:
        try:
            code, _, body = self.admin.get("/status", {})
        except OSError:
            return None
        return routes_accepted(body) if code == 200 else None

    def request(self, t: manifests.Target) -> tuple[int, dict[str, str]] | None:
        try:
            code, headers, _ = self.data.get(t.path + "/x", {"host": t.host, **dict(t.headers)})
        except (OSError, http.client.HTTPException):
            return None
        return code, headers

    def stop(self) -> None:
        """SIGTERM (turnout drains and exits, cProfile writes its file), then SIGKILL."""
        self.admin.close()
        self.data.close()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def poll(check: object, timeout: float, interval: float) -> float | None:
    """Call ``check`` until it returns True; seconds it took, or None on timeout."""
    assert callable(check)
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic() - start
        time.sleep(interval)
    return None


HTTPS_HOST = "secure.bench.test"
CERT_SECRET = "bench-cert"


@dataclass(frozen=True)
class Options:
    """What each measured tree holds besides the HTTPRoutes, and which change is timed."""

    grpc_routes: int = 0
    change: str = "route"  # or "secret", "grant", "namespace", "gateway"


SHARED = "shared"  # --change grant: the namespace of the Service the last route uses


def grant_yaml(from_namespace: str) -> str:
    """The ReferenceGrant in SHARED: HTTPRoutes of ``from_namespace`` may use Services."""
    return f"""\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: bench-grant
  namespace: {SHARED}
spec:
  from:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      namespace: {from_namespace}
  to:
    - group: ""
      kind: Service
"""


TEAM = "team"  # --change namespace: the namespace of the last route, relabelled


def team_namespace_yaml(admitted: bool) -> str:
    label = "yes" if admitted else "no"
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {TEAM}\n  labels:\n    bench-routes: '{label}'\n"


def write_selected_namespace(directory: Path, n: int, endpoint: tuple[str, int]) -> None:
    """--change namespace: the listener selects namespaces by label; the last route
    and its Service move to TEAM, whose Namespace ``team_namespace_yaml`` labels."""
    base = manifests.base_yaml().replace("  labels:\n", "  labels:\n    bench-routes: 'yes'\n", 1)
    selector = "      allowedRoutes:\n        namespaces:\n          from: Selector\n"
    selector += "          selector:\n            matchLabels: {bench-routes: 'yes'}\n"
    (directory / "00-base.yaml").write_text(base + selector)
    route = manifests.route_yaml(n - 1, n, endpoint)
    route = route.replace(f"namespace: {manifests.NAMESPACE}", f"namespace: {TEAM}")
    gateway = f"    - name: {manifests.GATEWAY}\n"
    assert gateway in route
    route = route.replace(gateway, gateway + f"      namespace: {manifests.NAMESPACE}\n")
    manifests.route_file(directory, n - 1).write_text(route)
    (directory / "00-team.yaml").write_text(team_namespace_yaml(True))


def write_cross_namespace(directory: Path, n: int, endpoint: tuple[str, int]) -> None:
    """--change grant: the last route's backendRefs go to Service svc-shared in SHARED
    (the same origin), permitted by ``grant_yaml``."""
    route, service = manifests.route_yaml(n - 1, n, endpoint).split("---\n", 1)
    before = f"        - name: svc-{n - 1}\n          port: 80"
    after = f"        - name: svc-shared\n          namespace: {SHARED}\n          port: 80"
    assert before in route
    manifests.route_file(directory, n - 1).write_text(
        route.replace(before, after) + "---\n" + service
    )
    shared = service.replace(f"svc-{n - 1}", "svc-shared")
    shared = shared.replace(f"namespace: {manifests.NAMESPACE}", f"namespace: {SHARED}")
    (directory / "00-shared.yaml").write_text(shared)
    (directory / "00-grant.yaml").write_text(grant_yaml(manifests.NAMESPACE))


def grpc_route_yaml(j: int) -> str:
    """GRPCRoute g-{j} on the HTTPRoutes' listener, to the Service of route j."""
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: g-{j}
  namespace: {manifests.NAMESPACE}
spec:
  parentRefs:
    - name: {manifests.GATEWAY}
  hostnames: ["grpc{j}.bench.test"]
  rules:
    - matches:
        - method: {{service: bench.Svc{j}}}
      backendRefs:
        - name: svc-{j}
          port: 80
"""


EXTRA_HOST = "extra.bench.test"  # --change gateway: the hostname of the extra listener


def extra_listener_yaml(port: int) -> str:
    """--change gateway: a second listener for the base Gateway, matching no route."""
    return f"""\
    - name: extra
      port: {port}
      protocol: HTTP
      hostname: {EXTRA_HOST}
"""


def free_spec_port(offset: int) -> int:
    """A listener port from 8081 up whose bound port (+ ``offset``) is free now: the
    ephemeral ports of the bench's own connections must not make it PortUnavailable."""
    for port in range(8081, 8181):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the extra listener")


def extra_listener_status(port: int) -> int | None:
    """The status a GET on the extra listener gets, or None when nothing listens."""
    request = f"GET / HTTP/1.1\r\nHost: {EXTRA_HOST}\r\nConnection: close\r\n\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(request.encode())
            head = conn.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def https_listener_yaml() -> str:
    """An HTTPS listener for the base Gateway (appended to its listeners)."""
    return f"""\
    - name: https
      port: 443
      protocol: HTTPS
      hostname: {HTTPS_HOST}
      tls:
        certificateRefs:
          - name: {CERT_SECRET}
"""


def secret_yaml(pair: tuple[str, str]) -> str:
    chain, key = pair
    return f"""\
apiVersion: v1
kind: Secret
metadata:
  name: {CERT_SECRET}
  namespace: {manifests.NAMESPACE}
type: kubernetes.io/tls
stringData:
  tls.crt: {json.dumps(chain)}
  tls.key: {json.dumps(key)}
"""


def key_pairs(count: int) -> list[tuple[str, str]]:
    """(certificate chain PEM, key PEM) for the HTTPS listener, ``count`` of them."""
    import trustme  # a dev dependency (make install), needed for --change secret only

    ca = trustme.CA()
    pairs = []
    for _ in range(count):
        issued = ca.issue_cert(HTTPS_HOST)
        pairs.append(
            (issued.cert_chain_pems[0].bytes().decode(), issued.private_key_pem.bytes().decode())
        )
    return pairs


def presented_certificate(port: int) -> bytes | None:
    """The DER certificate a TLS handshake on 127.0.0.1:port with SNI HTTPS_HOST gets."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=HTTPS_HOST) as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except OSError:
        return None


def pem_to_der(chain: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(
        chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )


def write_extras(directory: Path, options: Options, pair: tuple[str, str] | None) -> None:
    for j in range(options.grpc_routes):
        (directory / f"grpc-{j:05d}.yaml").write_text(grpc_route_yaml(j))
    if options.change == "secret":
        assert pair is not None
        base = directory / "00-base.yaml"
        base.write_text(manifests.base_yaml() + https_listener_yaml())
        (directory / "00-cert.yaml").write_text(secret_yaml(pair))


def measure(
    n: int,
    changes: int,
    origin_port: int,
    procs: Processes,
    tmp: Path,
    profile: Path | None,
    options: Options = Options(),
) -> Result:
    result = Result(n)
    directory = tmp / f"routes-{n}"
    manifests.write_tree(directory, n, default_endpoint=("127.0.0.1", origin_port))
    pairs = key_pairs(2) if options.change == "secret" else []
    write_extras(directory, options, pairs[0] if pairs else None)
    last = manifests.target(n - 1, n)
    endpoint = ("127.0.0.1", origin_port)
    if options.change == "grant":
        write_cross_namespace(directory, n, endpoint)
    if options.change == "namespace":
        write_selected_namespace(directory, n, endpoint)

    # The floor: interpreter start, imports, admin up, with the Gateway but no routes.
    empty = tmp / f"empty-{n}"
    empty.mkdir()
    (empty / "00-base.yaml").write_text(manifests.base_yaml())
    floor = Turnout(procs, empty, tmp / f"turnout-empty-{n}.log", None)
    try:
        up = poll(lambda: floor.status() is not None, READY_TIMEOUT, 0.01)
        result.startup_floor_s = (time.monotonic() - floor.started) if up is not None else -1
    finally:
        floor.stop()

    turnout = Turnout(procs, directory, tmp / f"turnout-{n}.log", profile)
    try:
        deadline = turnout.started + READY_TIMEOUT
        state: tuple[int, int] | None = None
        while time.monotonic() < deadline:
            state = turnout.status()
            if state is not None:
                if not result.admin_up_s:
                    result.admin_up_s = time.monotonic() - turnout.started
                if state == (n, n):
                    result.accepted_s = time.monotonic() - turnout.started
                    break
            if turnout.proc.poll() is not None:
                raise RuntimeError(f"turnout exited with {turnout.proc.returncode}; see its log")
            time.sleep(0.02)
        else:
            raise RuntimeError(f"{n} routes not all Accepted after {READY_TIMEOUT}s: {state}")
        served = poll(lambda: _code(turnout.request(last)) == 200, READY_TIMEOUT, 0.005)
        if served is None:
            raise RuntimeError(f"the data plane does not serve route r-{n - 1}")
        result.ready_s = time.monotonic() - turnout.started
        result.rss_loaded_mb, _ = proc_mem_mb(turnout.proc.pid)
        result.workers_loaded_mb = [rss for rss, _ in workers_mem_mb(turnout.proc.pid)]

        offset = turnout.proxy_port - manifests.LISTENER_PORT
        https_port = offset + 443
        extra_port = free_spec_port(offset) if options.change == "gateway" else 0
        if options.change == "secret":
            first = functools.partial(_presents, https_port, pem_to_der(pairs[0][0]))
            if poll(first, READY_TIMEOUT, 0.01) is None:
                raise RuntimeError("the HTTPS listener does not present the first certificate")
        for k in range(1, changes + 1):
            if options.change == "secret":
                pair = pairs[k % 2]
                manifests.write_atomic(directory / "00-cert.yaml", secret_yaml(pair))
                seen = functools.partial(_presents, https_port, pem_to_der(pair[0]))
            elif options.change == "grant":  # odd k: permitted to another namespace only
                granted = manifests.NAMESPACE if k % 2 == 0 else "nobody"
                manifests.write_atomic(directory / "00-grant.yaml", grant_yaml(granted))
                code = 200 if k % 2 == 0 else 500
                seen = functools.partial(lambda c: _code(turnout.request(last)) == c, code)
            elif options.change == "gateway":  # odd k: the extra listener is there
                extra = extra_listener_yaml(extra_port) if k % 2 else ""
                manifests.write_atomic(directory / "00-base.yaml", manifests.base_yaml() + extra)
                code = 404 if k % 2 else None
                seen = functools.partial(
                    lambda c, p: extra_listener_status(p) == c, code, offset + extra_port
                )
            elif options.change == "namespace":  # odd k: the label no longer matches
                admitted = k % 2 == 0
                manifests.write_atomic(directory / "00-team.yaml", team_namespace_yaml(admitted))
                code = 200 if admitted else 404
                seen = functools.partial(lambda c: _code(turnout.request(last)) == c, code)
            else:
                text = manifests.route_yaml(n - 1, n, endpoint, generation=k)
                manifests.write_atomic(manifests.route_file(directory, n - 1), text)
                seen = functools.partial(_shows_generation, turnout, last, k)
            start = time.monotonic()
            took = poll(seen, CHANGE_TIMEOUT, 0.002)
            if took is None:
                result.change_timeouts += 1
            else:
                result.changes_ms.append((time.monotonic() - start) * 1000)
            time.sleep(0.05)  # let the watcher settle: each change is its own batch
        result.rss_after_changes_mb, result.hwm_mb = proc_mem_mb(turnout.proc.pid)

        start = time.monotonic()
        for i in range(n):
            manifests.route_file(directory, i).unlink()
        gone = poll(lambda: (turnout.status() or (-1, 0))[0] == 0, TEARDOWN_TIMEOUT, 0.05)
        result.teardown_s = (time.monotonic() - start) if gone is not None else -1
        _, result.hwm_mb = proc_mem_mb(turnout.proc.pid)
        result.workers_hwm_mb = [hwm for _, hwm in workers_mem_mb(turnout.proc.pid)]
    finally:
        turnout.stop()
    return result


def _presents(port: int, expected: bytes) -> bool:
    return presented_certificate(port) == expected


def _shows_generation(turnout: Turnout, last: manifests.Target, k: int) -> bool:
    answer = turnout.request(last)
    return answer is not None and answer[1].get("x-bench-gen") == str(k)


def _code(answer: tuple[int, dict[str, str]] | None) -> int | None:
    return None if answer is None else answer[0]


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def verdict(ok: bool) -> str:
    return "ok" if ok else "**MISSED**"


def table(results: Sequence[Result]) -> str:
    lines = [
        "| routes | startup floor (0 routes) | admin up | all Accepted | last route served "
        "| target | ready vs target | change p50 | change p99 | change target "
        "| teardown | RSS loaded | RSS after changes | peak (VmHWM) | RSS < 300 MB "
        "| workers RSS loaded | workers peak (VmHWM) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        target = TARGETS.get(r.n)
        p50, p99 = percentile(r.changes_ms, 50), percentile(r.changes_ms, 99)
        change_ok = p99 <= CHANGE_TARGET_MS and not r.change_timeouts
        timeouts = f" ({r.change_timeouts} timed out)" if r.change_timeouts else ""
        lines.append(
            f"| {r.n:,} | {r.startup_floor_s:.2f} s | {r.admin_up_s:.2f} s | {r.accepted_s:.2f} s "
            f"| {r.ready_s:.2f} s | {f'{target:g} s' if target else '—'} "
            + (f"| {r.ready_s / target:.1f}x {verdict(r.ready_s <= target)} " if target else "| — ")
            + f"| {p50:.0f} ms | {p99:.0f} ms{timeouts} "
            + (f"| {verdict(change_ok)} " if r.n >= 5000 else "| — ")
            + f"| {r.teardown_s:.2f} s | {r.rss_loaded_mb:.0f} MB | {r.rss_after_changes_mb:.0f} MB "
            f"| {r.hwm_mb:.0f} MB | {verdict(r.hwm_mb < RSS_TARGET_MB)} "
            f"| {_per_worker(r.workers_loaded_mb)} | {_per_worker(r.workers_hwm_mb)} |"
        )
    return "\n".join(lines)


def _per_worker(values: Sequence[float]) -> str:
    """``52 / 53 MB``: one figure per worker process, in pid order."""
    return " / ".join(f"{v:.0f}" for v in values) + " MB" if values else "—"


def hotspots(profile: Path, limit: int) -> str:
    """Top functions by own time and by cumulative time, as file:line(function)."""
    stats = pstats.Stats(str(profile))
    total = stats.total_tt  # type: ignore[attr-defined]
    out = []
    for key, title in (("tottime", "own time"), ("cumtime", "cumulative")):
        rows = sorted(
            stats.stats.items(),  # type: ignore[attr-defined]
            key=lambda kv: kv[1][2] if key == "tottime" else kv[1][3],
            reverse=True,
        )
        out += [
            f"Top {limit} by {title} (of {total:.2f} s profiled):",
            "",
            "| own s | cum s | calls | where |",
            "|---:|---:|---:|---|",
        ]
        shown = 0
        for (filename, line, func), (_cc, nc, tt, ct, _callers) in rows:
            if key == "cumtime" and ("turnout" not in filename or "cProfile" in filename):
                continue  # cumulative: our own code only, the event loop wraps everything
            where = _short(filename) + f":{line}({func})"
            out.append(f"| {tt:.3f} | {ct:.3f} | {nc} | `{where}` |")
            shown += 1
            if shown >= limit:
                break
        out.append("")
    return "\n".join(out)


def _short(filename: str) -> str:
    for marker in ("/src/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--routes", default="1000,5000", help="comma-separated N (1000,5000)")
    parser.add_argument("--changes", type=int, default=50, help="single-route changes per N")
    parser.add_argument(
        "--profile", action="store_true", help="then cProfile one more run of the largest N"
    )
    parser.add_argument("--top", type=int, default=20, help="hotspots to list with --profile")
    parser.add_argument("--results", help="append the tables as a dated section to this file")
    parser.add_argument("--grpc-routes", type=int, default=0, help="also this many GRPCRoutes (0)")
    parser.add_argument(
        "--change",
        choices=("route", "secret", "grant", "namespace", "gateway"),
        default="route",
        help="what each timed change rewrites: the last HTTPRoute (route), the "
        "certificate Secret of an HTTPS listener (secret) or the ReferenceGrant that "
        "permits the last route's cross-namespace backendRef (grant) or the labels of the "
        "last route's Namespace, which the listener selects by label (namespace), or a "
        "second listener added to and removed from the Gateway (gateway)",
    )
    args = parser.parse_args(argv)
    options = Options(grpc_routes=args.grpc_routes, change=args.change)
    counts = [int(n) for n in args.routes.split(",")]
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))  # run the finally blocks

    # Byte-compile the tree measured, as installing a package does (pip compiles on
    # install). Shells that set PYTHONDONTWRITEBYTECODE would otherwise have every start
    # compile ~60 modules from source: ~35 ms of CPU in the control plane and ~50 ms in
    # each worker, which no installed turnout pays.
    compileall.compile_dir(str(SRC / "turnout"), quiet=1)
    procs = Processes(use_taskset=False)
    results: list[Result] = []
    profile_text = ""
    with tempfile.TemporaryDirectory(prefix="turnout-scale-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            origin_port = free_port()
            origin = procs.start(
                [
                    sys.executable,
                    str(HERE / "run.py"),
                    "--role",
                    "origin",
                    "--port",
                    str(origin_port),
                ],
                tmp / "origin.log",
            )
            wait_listening(origin_port, origin)
            for n in counts:
                print(f"{n:,} routes ...", flush=True)
                results.append(measure(n, args.changes, origin_port, procs, tmp, None, options))
                print(table(results[-1:]).splitlines()[-1], flush=True)
            if args.profile:
                n = max(counts)
                profile = tmp / f"turnout-{n}.prof"  # outside profile/: kept
                print(f"profiling {n:,} routes under cProfile (timings inflated) ...", flush=True)
                (tmp / "profile").mkdir()
                measure(
                    n, min(args.changes, 10), origin_port, procs, tmp / "profile", profile, options
                )
                profile_text = hotspots(profile, args.top)
        finally:
            procs.close()
    text = table(results)
    print()
    print(text)
    if profile_text:
        print()
        print(profile_text)
    if args.results:
        command = "python bench/scale.py " + " ".join(shlex.quote(a) for a in argv)
        section = [
            f"## scale.py, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            "",
            f"`{command.strip()}`",
            "",
            f"Measured {tree_label()}. {os.cpu_count()} CPUs, kernel {platform.release()}, Python "
            f"{platform.python_version()}. `turnout run -f DIR` on N HTTPRoutes (one file each, "
            "with a Service and EndpointSlice, ~10 routes per hostname, header matches on half, "
            "a wildcard every 50th). Times from process start; change = atomic rewrite of the "
            f"last route's file, {args.changes} changes, until a real request shows the new "
            "response header; teardown = delete every route file until /status lists none. "
            "The startup floor is the same command on a directory with only the Gateway; "
            "the source tree is byte-compiled first, as an installed package is. "
            "RSS and peak are the control plane's (the `turnout run` process); the workers "
            "columns give each data-plane worker process (one per CPU by default).",
            "",
            text,
            "",
        ]
        if profile_text:
            section += [f"cProfile of `turnout run` with {max(counts):,} routes:", "", profile_text]
        with open(args.results, "a", encoding="utf-8") as out:
            out.write("\n" + "\n".join(section))
        print(f"\nappended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
