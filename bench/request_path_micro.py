"""The Python cost of one proxied request, without sockets: a deterministic microbenchmark.

    python bench/request_path_micro.py            # 1 route and 1,000 routes
    python bench/request_path_micro.py --profile  # cProfile of the 1-route loop

Builds the same configurations as bench/run.py (Gateway API YAML through the control
plane), compiles them into the data plane's tables, and drives one ``ClientConnection``
and one pooled ``UpstreamConnection`` through their asyncio callbacks with in-memory
transports: ``data_received(request)`` on the client side, then
``data_received(response)`` on the upstream side, per request, checking that exactly the
expected bytes come out. What it measures is the interpreter work of turnout's request
path (httptools parsing, routing, head rewriting, the exchange's life) -- the part of a
proxied request that is not kernel TCP work and that load on other cores barely changes.
Prints the best of ``--repeat`` runs in µs per request (the minimum is the least noisy
estimate of the cost).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import manifests  # noqa: E402
import run  # noqa: E402
from turnout import ir  # noqa: E402
from turnout.dataplane.http1 import ClientConnection, SocketState  # noqa: E402
from turnout.dataplane.router import compile_routes  # noqa: E402
from turnout.dataplane.server import DataPlane  # noqa: E402
from turnout.dataplane.upstream import UpstreamConnection  # noqa: E402

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!"


class MemoryTransport:
    """Just enough of asyncio.Transport: remembers what was written."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def setup(routes: int, tmp: Path) -> tuple[ClientConnection, UpstreamConnection, bytes]:
    """A client connection on the compiled table and the one idle upstream connection."""
    config = ir.from_msgpack(run.compile_routes(tmp / f"routes-{routes}", routes, 9, 8))
    clusters, _ = DataPlane()._clusters(config.clusters)
    table = compile_routes(config, clusters)
    (socket_table,) = table.sockets.values()
    target = manifests.target(routes - 1, routes)
    cluster = next(c for c in clusters.values() if c.pools and c.pools[0].port == 9)
    pool = cluster.pools[0]
    upstream = UpstreamConnection(pool)
    upstream.connection_made(MemoryTransport())  # type: ignore[arg-type]
    pool.idle.append(upstream)
    client = ClientConnection(SocketState(socket_table))
    client.connection_made(MemoryTransport())  # type: ignore[arg-type]
    lines = [f"GET {target.path}/x HTTP/1.1", f"Host: {target.host}"]
    lines += ["User-Agent: wrk", "Accept: */*"]
    lines += [f"{name}: {value}" for name, value in target.headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return client, upstream, request


def loop_requests(
    client: ClientConnection, upstream: UpstreamConnection, request: bytes, n: int
) -> None:
    up_written = upstream.transport.written  # type: ignore[union-attr]
    client_written = client.transport.written  # type: ignore[union-attr]
    for _ in range(n):
        client.data_received(request)
        upstream.data_received(RESPONSE)
    if len(up_written) != n or len(client_written) != n:
        raise SystemExit(
            f"expected {n} writes each way, got {len(up_written)}/{len(client_written)}"
        )
    up_written.clear()
    client_written.clear()


async def bench(routes: int, args: argparse.Namespace, tmp: Path) -> float:
    client, upstream, request = setup(routes, tmp)
    loop_requests(client, upstream, request, 1000)  # warm caches, check the output
    client.transport.written = []  # type: ignore[union-attr]
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.thread_time()
        loop_requests(client, upstream, request, args.requests)
        best = min(best, (time.thread_time() - t0) / args.requests * 1e6)
    if args.show:
        client.data_received(request)
        upstream.data_received(RESPONSE)
        print(upstream.transport.written, client.transport.written)  # type: ignore[union-attr]
    client.connection_lost(None)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--routes", default="1,1000")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--show", action="store_true", help="print one request's bytes")
    args = parser.parse_args(argv)
    import uvloop

    with tempfile.TemporaryDirectory(prefix="turnout-micro-") as name:
        tmp = Path(name)
        if args.profile:
            import cProfile
            import pstats

            args.repeat = 1
            profiler = cProfile.Profile()
            profiler.enable()
            uvloop.run(bench(1, args, tmp))
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return 0
        for routes in (int(r) for r in args.routes.split(",")):
            best = uvloop.run(bench(routes, args, tmp))
            print(f"{routes} route(s): {best:.2f} µs per request (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
