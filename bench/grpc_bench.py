"""gRPC benchmark: unary calls per second through `turnout run`, as a ratio to the backend served directly.

    python bench/grpc_bench.py                    # 5 s per measurement, 1 run, 32 calls in flight
    python bench/grpc_bench.py --runs 3 --concurrency 64
    make bench-grpc                               # the same, then appends to bench/RESULTS.md

Starts the gRPC test backend (``tests/e2e/grpc_backend.py``: grpc.aio, one generic
handler, raw-bytes messages, no protoc) and ``turnout run`` on a directory with one
Gateway, an HTTPRoute and the backend's Service (port appProtocol ``kubernetes.io/h2c``,
so turnout speaks HTTP/2 to it). A grpc.aio client keeps ``--concurrency`` unary calls
in flight on one channel for ``--duration`` seconds, against the backend directly and
through turnout (interleaved within each run); each cell is the median of ``--runs``
runs. The backend runs on CPU 1, turnout on CPU 1 too when ``taskset`` exists, the client
on CPU 0 -- on a shared 2-core machine the numbers are noisy, compare ratios.

With ``h2load`` installed (Debian: nghttp2-client), also measures plain HTTP/2 GETs
through turnout to an h2c backend (``turnout.demo.h2echo``) against that backend directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import grpc.aio

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "tests" / "e2e" / "grpc_backend.py"
METHOD = "/bench.Echo/Unary"
PAYLOAD = b"x" * 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int, argv: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(cpu), *argv] if taskset else argv


def wait_until(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if predicate():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def config(backend_port: int, *, h2echo_port: int | None) -> str:
    text = """apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: turnout}
spec: {controllerName: turnout.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: turnout
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bench, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /bench.Echo/}}]
    backendRefs: [{name: grpc, port: 9000}]
  - backendRefs: [{name: h2echo, port: 9001}]
"""
    for name, port, target in (("grpc", 9000, backend_port), ("h2echo", 9001, h2echo_port)):
        if target is None:
            continue
        text += f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  ports: [{{name: p, port: {port}, appProtocol: kubernetes.io/h2c}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: p, port: {target}}}]
endpoints: [{{addresses: ["127.0.0.1"]}}]
"""
    return text


@contextlib.contextmanager
def process(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def unary_rate(target: str, concurrency: int, duration: float) -> tuple[float, int]:
    """(calls per second, errors) with ``concurrency`` calls in flight on one channel."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD)
        await call(PAYLOAD, timeout=10)  # connect and warm up
        done = errors = 0
        stop = time.monotonic() + duration

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < stop:
                try:
                    await call(PAYLOAD, timeout=10)
                    done += 1
                except grpc.aio.AioRpcError:
                    errors += 1

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.monotonic() - start), errors


def gateway_address(admin_port: int) -> str:
    """The address turnout gave the Gateway, from its admin API."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=5) as reply:
        items = json.load(reply)["items"]
    gateway = next(i for i in items if i["kind"] == "Gateway")
    return str(gateway["status"]["addresses"][0]["value"])


def h2load_rate(url: str, concurrency: int, duration: float) -> float | None:
    h2load = shutil.which("h2load")
    if h2load is None:
        return None
    out = subprocess.run(
        pinned(0, [h2load, "-c", "1", "-m", str(concurrency), "-D", str(int(duration)), url]),
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = re.search(r"finished in .*?, ([\d.]+) req/s", out)
    return float(found.group(1)) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--results", type=Path, help="append the table to this markdown file")
    args = parser.parse_args()

    backend_port, h2echo_port, admin_port = free_port(), free_port(), free_port()
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            process(
                pinned(1, [sys.executable, str(BACKEND), "--listen", f"127.0.0.1:{backend_port}"])
            )
        )
        h2echo = [sys.executable, "-m", "turnout.demo.h2echo", "--listen"]
        stack.enter_context(process(pinned(1, [*h2echo, f"127.0.0.1:{h2echo_port}"])))
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-grpc-")))
        (directory / "bench.yaml").write_text(config(backend_port, h2echo_port=h2echo_port))
        turnout = [sys.executable, "-m", "turnout", "run", "-f", str(directory)]
        turnout += ["--admin", f"127.0.0.1:{admin_port}", "--address-pool", "127.0.91.0/28"]
        turnout += ["--log-level", "warning"]
        stack.enter_context(process(pinned(1, turnout)))
        ready = f"http://127.0.0.1:{admin_port}/readyz"
        wait_until(lambda: urllib.request.urlopen(ready, timeout=1).status == 200, "turnout")
        address = gateway_address(admin_port)
        gateway = f"{address}:8080"
        wait_until(lambda: socket.create_connection((address, 8080), 1), "the listener")

        direct: list[float] = []
        proxied: list[float] = []
        errors = 0
        for _ in range(args.runs):
            for target, cells in ((f"127.0.0.1:{backend_port}", direct), (gateway, proxied)):
                rate, failed = asyncio.run(unary_rate(target, args.concurrency, args.duration))
                cells.append(rate)
                errors += failed
        h2_direct = h2load_rate(f"http://127.0.0.1:{h2echo_port}/", 32, args.duration)
        h2_proxied = h2load_rate(f"http://{gateway}/", 32, args.duration)

    d, p = statistics.median(direct), statistics.median(proxied)
    lines = [
        f"| system | calls/s ({args.concurrency} in flight, 1 channel) | vs backend direct |",
        "|---|---|---|",
        f"| gRPC backend served directly | {d:,.0f} | 1.00 |",
        f"| through turnout (HTTPRoute, h2c upstream) | {p:,.0f} | {p / d:.2f} |",
    ]
    if h2_direct and h2_proxied:
        lines += [
            f"| h2load GET, h2echo directly (32 streams) | {h2_direct:,.0f} | 1.00 |",
            f"| h2load GET through turnout | {h2_proxied:,.0f} | {h2_proxied / h2_direct:.2f} |",
        ]
    else:
        lines.append("| h2load (HTTP/2 GETs) | not installed: skipped | |")
    table = "\n".join(lines)
    print(table)
    print(f"errors: {errors}")
    if args.results:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = (
            f"python bench/grpc_bench.py --duration {args.duration:g} --runs {args.runs} "
            f"--concurrency {args.concurrency}"
        )
        section = (
            f"\n## grpc_bench.py, {stamp}\n\n`{command}` on {platform.node() or 'this machine'} "
            f"({os.cpu_count()} CPUs, shared and busy: noisy), medians of {args.runs} run(s) "
            f"of {args.duration:g} s; {errors} failed calls.\n\n{table}\n"
        )
        with args.results.open("a") as out:
            out.write(section)


if __name__ == "__main__":
    main()
