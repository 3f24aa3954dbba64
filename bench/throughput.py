"""Throughput of turnout's HTTP/1.1 data plane against the origin it proxies, with wrk.

Starts two processes -- a minimal fixed-response origin (uvloop + httptools) and a
DataPlane with one route to it -- then runs wrk against the origin directly and through
turnout, at 32 and 128 connections, and prints requests/s and the ratio turnout/origin
measured in the same run. With taskset available, wrk runs on CPU 0 and the servers on
CPU 1 (see /work/shared/PERFORMANCE-NOTES.md for the reference setup).

    python bench/throughput.py --duration 5

Exits 0 with a message when wrk is not installed (`apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import cast

ORIGIN_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!"
)


# --- the processes under test -----------------------------------------------------------------


def run_origin(port: int) -> None:
    """A fixed 13-byte response to every request, keep-alive, as fast as Python goes."""
    import httptools
    import uvloop

    class Origin(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpRequestParser(self)
            self.transport: asyncio.Transport | None = None
            self.out: list[bytes] = []

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

        def on_message_complete(self) -> None:
            self.out.append(ORIGIN_RESPONSE)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Origin, "127.0.0.1", port, reuse_address=True)
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


def run_proxy(port: int, origin_port: int) -> None:
    import uvloop

    from turnout import ir
    from turnout.dataplane import DataPlane

    route = ir.HTTPRouteRule(
        name="httproute/default/bench/rule/0/match/0",
        match=ir.RouteMatch(path=ir.PathMatch(type="PathPrefix", value="/")),
        backends=(ir.WeightedBackend(weight=1, cluster="default/origin:80"),),
    )
    listener = ir.Listener(
        name="default/bench/http",
        address="127.0.0.1",
        port=port,
        spec_port=80,
        protocol="HTTP",
        virtual_hosts=(ir.VirtualHost(hostname="*", routes=(route,)),),
    )
    config = ir.Config(
        version=1,
        gateways=(ir.Gateway(name="default/bench", address="127.0.0.1", listeners=(listener,)),),
        clusters={
            "default/origin:80": ir.Cluster(
                name="default/origin:80",
                endpoints=(ir.Endpoint(address="127.0.0.1", port=origin_port),),
            )
        },
    )

    async def serve() -> None:
        dataplane = DataPlane()
        result = await dataplane.apply(config)
        if any(result.values()):
            raise SystemExit(f"listener failed: {result}")
        await asyncio.Event().wait()

    uvloop.run(serve())


# --- the driver -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on port {port} after {timeout}s")


def pinned(cpu: int, command: list[str], use_taskset: bool) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if use_taskset else command


def run_wrk(port: int, connections: int, duration: int, use_taskset: bool) -> float:
    command = pinned(
        0,
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}/"],
        use_taskset,
    )
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    if match is None:
        raise SystemExit(f"could not read wrk output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", output)
    if errors:
        print(f"  wrk reported: {errors.group(0)}", file=sys.stderr)
    return float(match.group(1))


def drive(duration: int, connections: Sequence[int]) -> int:
    if shutil.which("wrk") is None:
        print("SKIP: wrk is not installed (apt-get install -y wrk); nothing measured.")
        return 0
    use_taskset = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    origin_port, proxy_port = free_port(), free_port()
    script = os.path.abspath(__file__)
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(script)), "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    servers = [
        subprocess.Popen(
            pinned(
                1,
                [sys.executable, script, "--role", "origin", "--port", str(origin_port)],
                use_taskset,
            ),
            env=env,
        ),
        subprocess.Popen(
            pinned(
                1,
                [
                    sys.executable,
                    script,
                    "--role",
                    "proxy",
                    "--port",
                    str(proxy_port),
                    "--origin-port",
                    str(origin_port),
                ],
                use_taskset,
            ),
            env=env,
        ),
    ]
    try:
        wait_listening(origin_port)
        wait_listening(proxy_port)
        print(
            f"wrk -t1, {duration}s per run, pinning: {'wrk CPU 0, servers CPU 1' if use_taskset else 'none'}"
        )
        print(f"{'conns':>6} {'origin req/s':>14} {'turnout req/s':>14} {'ratio':>7}")
        for conns in connections:
            run_wrk(proxy_port, conns, 1, use_taskset)  # warm up pools and caches
            origin = run_wrk(origin_port, conns, duration, use_taskset)
            proxied = run_wrk(proxy_port, conns, duration, use_taskset)
            print(f"{conns:>6} {origin:>14,.0f} {proxied:>14,.0f} {proxied / origin:>7.3f}")
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=5)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", default="32,128", help="comma-separated list")
    parser.add_argument("--role", choices=["driver", "origin", "proxy"], default="driver")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--origin-port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.role == "origin":
        run_origin(args.port)
        return 0
    if args.role == "proxy":
        run_proxy(args.port, args.origin_port)
        return 0
    return drive(args.duration, [int(c) for c in args.connections.split(",")])


if __name__ == "__main__":
    sys.exit(main())
