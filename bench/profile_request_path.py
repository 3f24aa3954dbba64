"""CPU cost per proxied request: a noise-robust companion to bench/run.py.

    python bench/profile_request_path.py                      # 1 route, 128 conns, 50,000 reqs
    python bench/profile_request_path.py --routes 1000 --nginx
    python bench/profile_request_path.py --profile /tmp/p.out # cProfile the proxy too

Requests/s on a shared, busy machine swing by tens of percent; the CPU time a process
spends per request barely moves (other processes only add cache and scheduler effects).
So this starts the bench origin and one turnout ``DataPlane`` process (the same roles as
bench/run.py), sends exactly ``--requests`` keep-alive requests (no pipelining: each
connection sends its next request once the previous response is complete) over
``--connections`` connections after a warm-up, and reads the proxy process's user+sys
CPU time from /proc/<pid>/stat around the measured window. ``--nginx`` measures an
nginx worker (bench/run.py's config) the same way, for the target. The client is a
uvloop + httptools Protocol, in this process, not part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

import manifests
import run

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of ``pid`` in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


class Client(asyncio.Protocol):
    """One keep-alive connection sending requests one after the other."""

    def __init__(self, request: bytes, budget: list[int], done: asyncio.Future[None]) -> None:
        import httptools

        self.request = request
        self.budget = budget  # shared: [requests left to send, responses left, errors]
        self.done = done
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        if self.budget[0] > 0 and self.transport is not None:
            self.budget[0] -= 1
            self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() != 200:
            self.budget[2] += 1

    def on_message_complete(self) -> None:
        self.budget[1] -= 1
        if self.budget[1] == 0 and not self.done.done():
            self.done.set_result(None)
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))


async def drive(port: int, request: bytes, connections: int, count: int) -> tuple[float, int]:
    """Send exactly ``count`` requests over ``connections``; wall seconds and non-200s."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    budget = [count, count, 0]
    t0 = time.perf_counter()
    transports = []
    for _ in range(min(connections, count)):
        transport, _ = await loop.create_connection(
            lambda: Client(request, budget, done), "127.0.0.1", port
        )
        transports.append(transport)
    await done
    elapsed = time.perf_counter() - t0
    for transport in transports:
        transport.close()
    return elapsed, budget[2]


def measure(
    pid: int, port: int, request: bytes, args: argparse.Namespace
) -> tuple[float, float, float, int]:
    """(CPU µs per request, of which user, wall requests/s, errors) over the fixed count."""
    import uvloop

    uvloop.run(drive(port, request, args.connections, args.warmup))
    user0, sys0 = cpu_seconds(pid)
    elapsed, errors = uvloop.run(drive(port, request, args.connections, args.requests))
    user1, sys1 = cpu_seconds(pid)
    per = 1e6 / args.requests
    total = (user1 - user0 + sys1 - sys0) * per
    return total, (user1 - user0) * per, args.requests / elapsed, errors


def request_bytes(host: str, path: str, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "User-Agent: profile", "Accept: */*"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--routes", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="measurements (median shown)")
    parser.add_argument("--nginx", action="store_true", help="also measure nginx, 1 worker")
    parser.add_argument("--profile", help="run the proxy under cProfile, stats to this file")
    parser.add_argument("--strace", help="count the proxy's syscalls (strace -c) into this file")
    parser.add_argument("--role", choices=["driver", "profiled-proxy"], default="driver")
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    if args.role == "profiled-proxy":
        return profiled_proxy(args.config, args.profile)

    env = dict(os.environ)
    env["PYTHONPATH"] = str(run.SRC) + os.pathsep + env.get("PYTHONPATH", "")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="turnout-prof-") as tmp_name:
            tmp = Path(tmp_name)
            runpy = [sys.executable, str(Path(run.__file__).resolve())]
            origin_port = run.free_port()
            origin = start([*runpy, "--role", "origin", "--port", str(origin_port)], env, procs)
            run.wait_listening(origin_port, origin)
            port = run.free_port()
            config = tmp / "config.msgpack"
            config.write_bytes(run.compile_routes(tmp / "routes", args.routes, origin_port, port))
            if args.profile:
                me = [sys.executable, str(Path(__file__).resolve()), "--role", "profiled-proxy"]
                command = [*me, "--config", str(config), "--profile", args.profile]
            else:
                command = [*runpy, "--role", "proxy", "--config", str(config)]
            proxy = start(command, env, procs)
            run.wait_listening(port, proxy)
            target = manifests.target(args.routes - 1, args.routes)
            request = request_bytes(target.host, target.path + "/x", target.headers)
            report("turnout", proxy.pid, port, request, args)
            if args.profile:
                proxy.send_signal(signal.SIGINT)
                proxy.wait(30)
            if args.nginx:
                nginx_port = run.free_port()
                conf = tmp / "nginx.conf"
                conf.write_text(run.nginx_conf(tmp, nginx_port, origin_port, 1))
                for sub in (
                    "nginx-body",
                    "nginx-proxy",
                    "nginx-fastcgi",
                    "nginx-uwsgi",
                    "nginx-scgi",
                ):
                    (tmp / sub).mkdir()
                master = start(
                    ["nginx", "-p", str(tmp), "-e", str(tmp / "e.log"), "-c", str(conf)], env, procs
                )
                run.wait_listening(nginx_port, master)
                worker = int(subprocess.check_output(["pgrep", "-P", str(master.pid)]).split()[0])
                nginx_request = request_bytes("bench", "/svc0/api/x", ())
                report("nginx 1 worker", worker, nginx_port, nginx_request, args)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


def start(
    command: list[str], env: dict[str, str], procs: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    procs.append(proc)
    return proc


def report(label: str, pid: int, port: int, request: bytes, args: argparse.Namespace) -> None:
    tracer = None
    if args.strace:
        tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", args.strace])
        time.sleep(1.0)
    results = sorted(measure(pid, port, request, args) for _ in range(args.repeat))
    if tracer is not None:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(10)
    cpu = [r[0] for r in results]
    median = results[len(results) // 2]
    print(
        f"{label}: {median[0]:.1f} CPU µs/request, user {median[1]:.1f} "
        f"(all: {', '.join(f'{c:.1f}' for c in cpu)}), "
        f"{median[2]:,.0f} req/s wall, {sum(r[3] for r in results)} non-200, "
        f"{args.requests:,} requests x {args.repeat} over {args.connections} connections",
        flush=True,
    )


def profiled_proxy(config_path: str, out: str) -> int:
    """bench/run.py's proxy role under cProfile; stats written on SIGINT."""
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run.run_proxy(config_path)
    except KeyboardInterrupt:
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
