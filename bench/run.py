"""Data-plane benchmark: turnout vs nginx vs HAProxy vs the origin itself, with wrk.

    python bench/run.py                         # 5 s per measurement, median of 3 runs
    python bench/run.py --runs 5 --duration 10  # medians of 5 longer runs
    make bench                                  # --all-workers, then appends to bench/RESULTS.md

Starts, each in its own process group:

* the origin: a fixed-response keep-alive server (uvloop + httptools) answering 13 bytes,
  or 64 KiB when the request path contains ``/big``;
* nginx (1 worker) and HAProxy (1 thread) as plain keep-alive reverse proxies to it, from
  configs generated into a temp dir (skipped, with a line saying so, when not installed);
* turnout's ``DataPlane`` three times: with a 1-route table, with a 1,000-HTTPRoute
  table, and with the 1-route table from its Python source (``TURNOUT_PURE_PYTHON=1``:
  the data plane without its mypyc-compiled modules, so that every run shows what
  compiling buys). All come from Gateway API YAML compiled by the real control plane
  (``turnout.runtime.Pipeline``: files -> graph.build -> ir.build); the request matches
  rule 0 of the *last* route, every other route points at a dead port, so a wrong match
  shows up as non-2xx responses.

With ``--all-workers`` (``make bench`` sets it) three more systems use every CPU: nginx
with one worker per CPU, HAProxy with one thread per CPU, and ``turnout run --workers N``
(the product: control plane plus N data-plane processes on one SO_REUSEPORT port) on the
1-route tree. They are not pinned, so they share CPU 0 with wrk: on a 2-CPU machine
this measures the whole box under load, not the proxies' ceiling.

wrk (``-t1 --latency``) runs on CPU 0, the one-worker servers on CPU 1 (``taskset``), at
each connection count and body size; each cell is the median of ``--runs`` runs, the systems
interleaved within a run. Prints a markdown table (requests/s, p50, p99, each as a ratio
to nginx and to the origin) and, with ``--results FILE``, appends it as a dated section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"  # measure the tree this script sits in, not the installed one
sys.path[:0] = [str(HERE), str(SRC)]

import manifests  # noqa: E402

BIG_BODY = 64 * 1024
ROUTES_LARGE = 1000

# --- the processes under test -----------------------------------------------------------------


def run_origin(port: int) -> None:
    """13 bytes (or 64 KiB for paths containing /big) to every request, keep-alive."""
    import httptools
    import uvloop

    small = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!"
    )
    big = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s" % (
        BIG_BODY,
        b"x" * BIG_BODY,
    )

    class Origin(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpRequestParser(self)
            self.transport: asyncio.Transport | None = None
            self.out: list[bytes] = []
            self.response = small

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                if self.transport is not None:
                    self.transport.close()
                return
            if self.out and self.transport is not None:
                self.transport.write(b"".join(self.out))
                self.out.clear()

        def on_url(self, url: bytes) -> None:
            self.response = big if b"/big" in url else small

        def on_message_complete(self) -> None:
            self.out.append(self.response)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        # A proxy with a cold pool opens a connection per concurrent request at once: with
        # asyncio's default backlog (100), 128 of them overflowed the accept queue and the
        # dropped SYNs were retried after 1 s -- half-second p99s for whichever system
        # happened to warm its pool in that run (nginx, HAProxy or turnout alike).
        server = await loop.create_server(
            Origin, "127.0.0.1", port, reuse_address=True, backlog=4096
        )
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


def run_proxy(config_path: str) -> None:
    """A turnout DataPlane serving the msgpack-encoded ir.Config at ``config_path``."""
    import uvloop

    from turnout import ir
    from turnout.dataplane import DataPlane

    config = ir.from_msgpack(Path(config_path).read_bytes())

    async def serve() -> None:
        dataplane = DataPlane()
        result = await dataplane.apply(config)
        if any(result.values()):
            raise SystemExit(f"listener failed: {result}")
        await asyncio.Event().wait()

    uvloop.run(serve())


def compile_routes(directory: Path, n: int, origin_port: int, proxy_port: int) -> bytes:
    """Gateway API YAML for ``n`` routes -> the real control plane -> msgpack ir.Config."""
    from turnout import ir
    from turnout.runtime import Pipeline, RunOptions

    manifests.write_tree(directory, n, {n - 1: ("127.0.0.1", origin_port)})
    options = RunOptions(paths=(directory,), port_offset=proxy_port - manifests.LISTENER_PORT)
    loaded, _, config = Pipeline(options).compile()
    if loaded.errors:
        raise SystemExit(f"{n}-route manifests do not load: {loaded.errors[:3]}")
    listener = config.gateways[0].listeners[0]
    if (listener.address, listener.port) != ("127.0.0.1", proxy_port):
        raise SystemExit(f"unexpected listener address {listener.address}:{listener.port}")
    return ir.to_msgpack(config)


def nginx_conf(tmp: Path, port: int, origin_port: int, workers: int = 1) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes {workers};
daemon off;
pid {tmp}/nginx-{port}.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    upstream origin {{
        server 127.0.0.1:{origin_port};
        keepalive 256;
        keepalive_requests 10000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
        }}
    }}
}}
"""


def haproxy_conf(port: int, origin_port: int, threads: int = 1) -> str:
    return f"""global
    nbthread {threads}
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server origin 127.0.0.1:{origin_port} maxconn 4000
"""


# --- the driver -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


class Processes:
    """Children in their own process groups; ``close`` kills every group it started."""

    def __init__(self, use_taskset: bool) -> None:
        self.use_taskset = use_taskset
        self.procs: list[subprocess.Popen[bytes]] = []

    def pinned(self, cpu: int, command: list[str]) -> list[str]:
        return ["taskset", "-c", str(cpu), *command] if self.use_taskset else command

    def start(
        self,
        command: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        *,
        pinned: bool = True,
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self.pinned(1, command) if pinned else command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with _suppress_lookup():
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with _suppress_lookup():  # also stragglers of a group (nginx's worker)
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _suppress_lookup() -> contextlib.suppress:
    return contextlib.suppress(ProcessLookupError, PermissionError)


@dataclass(frozen=True)
class System:
    name: str
    port: int
    host: str = "localhost"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    workers: int = 1  # processes or threads serving it; compared with nginx of as many


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: str | None


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _latency_ms(text: str, percent: str) -> float:
    match = re.search(rf"^\s+{percent}%\s+([0-9.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {percent}% latency in wrk output:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    system: System, big: bool, connections: int, duration: float, use_taskset: bool
) -> Sample:
    path = system.path.rstrip("/") + "/big" if big else system.path
    command = ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency"]
    command += ["-H", f"Host: {system.host}"]
    for name, value in system.headers:
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://127.0.0.1:{system.port}{path}")
    if use_taskset:
        command = ["taskset", "-c", "0", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if done.returncode != 0 or rps is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {out}{done.stderr}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_err = re.search(r"Socket errors: (.*)", out)
    return Sample(
        rps=float(rps.group(1)),
        p50_ms=_latency_ms(out, "50"),
        p99_ms=_latency_ms(out, "99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sock_err.group(1).strip() if sock_err else None,
    )


@dataclass
class Cell:
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)

    @property
    def problems(self) -> str:
        bad = sum(s.non_2xx for s in self.samples)
        errs = {s.socket_errors for s in self.samples if s.socket_errors}
        notes = [f"{bad} non-2xx"] if bad else []
        return "; ".join(notes + sorted(errs))


def start_systems(
    procs: Processes, tmp: Path, skipped: list[str], *, all_workers: bool
) -> tuple[list[System], int]:
    """Origin, nginx, HAProxy, turnout (1 route, compiled and interpreted) and turnout
    (1,000 routes); with
    ``all_workers`` also nginx, HAProxy and ``turnout run`` on every CPU."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    me = [sys.executable, str(Path(__file__).resolve())]
    origin_port = free_port()
    origin = procs.start(
        [*me, "--role", "origin", "--port", str(origin_port)], tmp / "origin.log", env
    )
    systems = [System("origin (direct)", origin_port, path="/svc0/api/x")]
    waits = [(origin_port, origin)]
    cpus = os.cpu_count() or 1
    counts = [1, cpus] if all_workers and cpus > 1 else [1]

    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if nginx is None:
        skipped.append("nginx: SKIP, not installed (apt-get install -y nginx)")
    else:
        for sub in ("nginx-body", "nginx-proxy", "nginx-fastcgi", "nginx-uwsgi", "nginx-scgi"):
            (tmp / sub).mkdir()
        for workers in counts:
            port = free_port()
            conf = tmp / f"nginx-{workers}.conf"
            conf.write_text(nginx_conf(tmp, port, origin_port, workers))
            log = tmp / f"nginx-error-{workers}.log"
            proc = procs.start(
                [nginx, "-p", str(tmp), "-e", str(log), "-c", str(conf)],
                tmp / f"nginx-{workers}.log",
                pinned=workers == 1,
            )
            label = "nginx 1 worker" if workers == 1 else f"nginx {workers} workers"
            systems.append(System(label, port, path="/svc0/api/x", workers=workers))
            waits.append((port, proc))

    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if haproxy is None:
        skipped.append("haproxy: SKIP, not installed (apt-get install -y haproxy)")
    else:
        for threads in counts:
            port = free_port()
            conf = tmp / f"haproxy-{threads}.cfg"
            conf.write_text(haproxy_conf(port, origin_port, threads))
            proc = procs.start(
                [haproxy, "-db", "-f", str(conf)],
                tmp / f"haproxy-{threads}.log",
                pinned=threads == 1,
            )
            label = "HAProxy 1 thread" if threads == 1 else f"HAProxy {threads} threads"
            systems.append(System(label, port, path="/svc0/api/x", workers=threads))
            waits.append((port, proc))

    for n in (1, ROUTES_LARGE):
        port = free_port()
        config = tmp / f"config-{n}.msgpack"
        t0 = time.perf_counter()
        config.write_bytes(compile_routes(tmp / f"routes-{n}", n, origin_port, port))
        print(
            f"compiled {n} HTTPRoute(s) through the control plane in {time.perf_counter() - t0:.2f} s"
        )
        proc = procs.start(
            [*me, "--role", "proxy", "--config", str(config)], tmp / f"turnout-{n}.log", env
        )
        target = manifests.target(n - 1, n)
        label = "turnout 1 route" if n == 1 else f"turnout {n:,} routes"
        systems.append(System(label, port, target.host, target.path + "/x", target.headers))
        waits.append((port, proc))
        if n == 1:
            # The same proxy from its Python source (TURNOUT_PURE_PYTHON=1): what compiling
            # the data plane with mypyc buys, measured in the same run.
            port = free_port()
            config = tmp / "config-1-interpreted.msgpack"
            config.write_bytes(compile_routes(tmp / "routes-1-interpreted", 1, origin_port, port))
            proc = procs.start(
                [*me, "--role", "proxy", "--config", str(config)],
                tmp / "turnout-1-interpreted.log",
                {**env, "TURNOUT_PURE_PYTHON": "1"},
            )
            label = "turnout 1 route, interpreted"
            systems.append(System(label, port, target.host, target.path + "/x", target.headers))
            waits.append((port, proc))

    if len(counts) > 1:
        # The product itself: `turnout run` on the 1-route tree compiled above, its
        # Gateway on 127.0.0.1 (the pool's first address), one worker per CPU.
        port = free_port()
        command = [sys.executable, "-m", "turnout", "run", "-f", str(tmp / "routes-1")]
        command += ["--workers", str(cpus), "--admin", f"127.0.0.1:{free_port()}"]
        command += ["--port-offset", str(port - manifests.LISTENER_PORT), "--log-level", "error"]
        proc = procs.start(command, tmp / "turnout-run.log", env, pinned=False)
        target = manifests.target(0, 1)
        label = f"turnout run {cpus} workers"
        systems.append(System(label, port, target.host, target.path + "/x", target.headers, cpus))
        waits.append((port, proc))

    for port, proc in waits:
        wait_listening(port, proc)
    return systems, origin_port


def fmt_ms(value: float) -> str:
    return f"{value * 1000:.0f} µs" if value < 1 else f"{value:.2f} ms"


def ratio(a: float, b: float | None) -> str:
    return "—" if not b else f"{a / b:.2f}"


def tables(
    results: dict[tuple[str, int, str], Cell],
    systems: Sequence[System],
    bodies: Sequence[str],
    connections: Sequence[int],
) -> str:
    lines = [
        "| body | conns | system | req/s | vs nginx | vs origin | p50 | vs nginx | vs origin | p99 | vs nginx | vs origin | notes |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for body in bodies:
        for conns in connections:
            for s in systems:
                nginx = next(
                    (n for n in systems if n.name.startswith("nginx") and n.workers == s.workers),
                    None,
                )
                ref = {
                    key: {
                        a: results[(r.name, conns, body)].median(a)
                        for a in ("rps", "p50_ms", "p99_ms")
                    }
                    for key, r in (("nginx", nginx), ("origin", systems[0]))
                    if r is not None
                }
                cell = results[(s.name, conns, body)]
                row = [body, str(conns), s.name]
                for attr, show in (
                    ("rps", lambda v: f"{v:,.0f}"),
                    ("p50_ms", fmt_ms),
                    ("p99_ms", fmt_ms),
                ):
                    value = cell.median(attr)
                    row += [show(value)]
                    row += [ratio(value, ref.get(k, {}).get(attr)) for k in ("nginx", "origin")]
                row.append(cell.problems)
                lines.append("| " + " | ".join(row) + " |")
    one = _find(systems, "turnout 1 route")
    many = _find(systems, "routes")
    if one is not None and many is not None:
        lines += [
            "",
            f"{ROUTES_LARGE:,}-route table vs 1 route (request matches the last route):",
            "",
            "| body | conns | 1 route req/s | 1,000 routes req/s | ratio | p99 1 route | p99 1,000 routes |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for body in bodies:
            for conns in connections:
                a, b = results[(one.name, conns, body)], results[(many.name, conns, body)]
                lines.append(
                    f"| {body} | {conns} | {a.median('rps'):,.0f} | {b.median('rps'):,.0f} | "
                    f"{ratio(b.median('rps'), a.median('rps'))} | {fmt_ms(a.median('p99_ms'))} | "
                    f"{fmt_ms(b.median('p99_ms'))} |"
                )
    return "\n".join(lines)


def _find(systems: Sequence[System], needle: str) -> System | None:
    return next((s for s in systems if needle in s.name), None)


def tree_label() -> str:
    """The commit measured, and whether src/ had uncommitted changes."""
    git = ["git", "-C", str(HERE.parent)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
        )
    except OSError:
        return f"tree {HERE.parent}"
    if head.returncode != 0:
        return f"tree {HERE.parent} (not a git checkout)"
    return f"commit {head.stdout.strip()}" + (
        " + uncommitted src/ changes" if dirty.stdout.strip() else ""
    )


def versions() -> str:
    def first_line(command: list[str]) -> str | None:
        if shutil.which(command[0], path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
            return None
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
        text = (done.stdout + done.stderr).strip().splitlines()
        return text[0] if text else None

    import httptools
    import uvloop

    parts = [
        f"{os.cpu_count()} CPUs, kernel {platform.release()}",
        # The interpreter's build matters (~15-20% of the proxy's CPU): see tools/pick-python.
        f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})",
        f"uvloop {uvloop.__version__}, httptools {httptools.__version__}",
    ]
    for command in (["nginx", "-v"], ["haproxy", "-v"]):
        line = first_line(command)
        if line:
            parts.append(line.replace("nginx version: ", ""))
    return "; ".join(parts)


def drive(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        print("SKIP: wrk is not installed (apt-get install -y wrk); nothing measured.")
        return 0
    use_taskset = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    connections = [int(c) for c in args.connections.split(",")]
    bodies = [b for b in args.bodies.split(",") if b]
    skipped: list[str] = []
    procs = Processes(use_taskset)
    results: dict[tuple[str, int, str], Cell] = {}
    with tempfile.TemporaryDirectory(prefix="turnout-bench-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        try:
            systems, _ = start_systems(procs, tmp, skipped, all_workers=args.all_workers)
            for line in skipped:
                print(line)
            pinning = (
                "wrk on CPU 0, servers on CPU 1"
                if use_taskset
                else "no pinning (taskset or 2 CPUs missing)"
            )
            print(
                f"wrk -t1 --latency, {args.duration:g} s x {args.runs} run(s), {pinning}",
                flush=True,
            )
            for body in bodies:
                for conns in connections:
                    for s in systems:  # warm-up: pools, caches, nginx upstream keep-alive
                        run_wrk(s, body == "64KiB", conns, 1, use_taskset)
                    for run in range(args.runs):
                        for s in systems:
                            sample = run_wrk(s, body == "64KiB", conns, args.duration, use_taskset)
                            results.setdefault((s.name, conns, body), Cell()).samples.append(sample)
                            print(
                                f"  {body:>5} c={conns:<4} run {run + 1}: {s.name:<22} "
                                f"{sample.rps:>10,.0f} req/s  p50 {fmt_ms(sample.p50_ms):>9}  "
                                f"p99 {fmt_ms(sample.p99_ms):>9}"
                                + (f"  non-2xx {sample.non_2xx}" if sample.non_2xx else ""),
                                flush=True,
                            )
        finally:
            procs.close()
    table = tables(results, systems, bodies, connections)
    print()
    print(table)
    if args.results:
        command = "python bench/run.py " + " ".join(shlex.quote(a) for a in args.argv)
        section = [
            f"## run.py, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            "",
            f"`{command.strip()}`",
            "",
            f"Measured {tree_label()}. {versions()}. wrk `-t1 --latency`, {pinning}; {args.duration:g} s per "
            f"measurement, median of {args.runs} run(s), systems interleaved. Origin: uvloop + "
            f"httptools fixed response (13 B, or 64 KiB). nginx/HAProxy: keep-alive to the "
            f"origin. turnout: one `DataPlane` process per table, compiled from Gateway API "
            f"YAML by the control plane; the request matches the last route; "
            f"`interpreted`: the same proxy with TURNOUT_PURE_PYTHON=1 (no mypyc modules). "
            f"Rows with N workers/threads are unpinned and compared with nginx with N "
            f"workers; `turnout run N workers` is the whole product on the 1-route tree.",
            "",
            *(f"- {line}" for line in skipped),
            *([""] if skipped else []),
            table,
            "",
        ]
        with open(args.results, "a", encoding="utf-8") as out:
            out.write("\n" + "\n".join(section))
        print(f"\nappended to {args.results}")
    return 0


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="runs per cell, systems interleaved; the median is shown (3)",
    )
    parser.add_argument("--connections", default="32,128", help="comma-separated (32,128)")
    parser.add_argument("--bodies", default="tiny,64KiB", help="tiny and/or 64KiB")
    parser.add_argument("--results", help="append the table as a dated section to this file")
    parser.add_argument(
        "--all-workers",
        action="store_true",
        help="also nginx, HAProxy and `turnout run` with one worker per CPU (unpinned)",
    )
    parser.add_argument("--role", choices=["driver", "origin", "proxy"], default="driver")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", help="proxy role: msgpack ir.Config")
    args = parser.parse_args(argv)
    args.argv = [a for a in argv]
    if args.role == "origin":
        run_origin(args.port)
        return 0
    if args.role == "proxy":
        run_proxy(args.config)
        return 0
    signal.signal(signal.SIGTERM, _raise_exit)  # so `finally` kills the children
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
