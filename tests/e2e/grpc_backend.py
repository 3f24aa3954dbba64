"""A gRPC test backend without protoc: every method of every service, messages as raw bytes.

Run it as a subprocess (``python tests/e2e/grpc_backend.py --listen 127.0.0.1:PORT --name
NAME``) or start it from a test with :func:`launch_grpc_backend`. It is a grpc.aio server
with one generic handler (``grpc.GenericRpcHandler``) and no (de)serializers, so clients
call any ``/package.Service/Method`` path with ``bytes`` requests and get ``bytes``
back. What a method does depends only on the last part of its name:

================  ==========================================================================
method name       behaviour
================  ==========================================================================
``ServerStream``  unary request, answers ``x-count`` (metadata, default 3) messages
                  ``<request>-<i>``
``ClientStream``  stream of requests, answers their concatenation
``BidiStream``    echoes each request as it arrives, in order
``Sleep``         sleeps ``float(request)`` seconds, then echoes it (for deadlines)
``Fail``          request ``CODE:message`` aborts with ``grpc.StatusCode[CODE]`` and message
anything else     unary echo of the request
================  ==========================================================================

Every call answers with initial metadata ``x-backend`` (the ``--name``), ``x-method``
(the full method path) and every request metadata key starting with ``x-echo-`` echoed
back, and with trailing metadata ``x-backend`` and ``x-trailer: done``. GRPCRoute tests
can thus tell which backend and which method served a call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

Metadata = tuple[tuple[str, str | bytes], ...]


def _response_metadata(name: str, method: str, metadata: Any) -> Metadata:
    echoed = tuple((k, v) for k, v in (metadata or ()) if k.startswith("x-echo-"))
    return (("x-backend", name), ("x-method", method), *echoed)


def _trailers(name: str) -> Metadata:
    return (("x-backend", name), ("x-trailer", "done"))


class EchoHandler(grpc.GenericRpcHandler):
    """Serves every method path; behaviour by method name (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method: str = details.method  # type: ignore[attr-defined]
        kind = method.rsplit("/", 1)[-1]
        name = self.name

        async def start(context: grpc.aio.ServicerContext[Any, Any]) -> None:
            metadata = context.invocation_metadata()
            await context.send_initial_metadata(_response_metadata(name, method, metadata))
            context.set_trailing_metadata(_trailers(name))

        if kind == "ServerStream":

            async def server_stream(
                request: bytes, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[bytes]:
                await start(context)
                count = int(dict(context.invocation_metadata() or ()).get("x-count", "3"))
                for i in range(count):
                    yield request + b"-%d" % i

            return grpc.unary_stream_rpc_method_handler(server_stream)
        if kind == "ClientStream":

            async def client_stream(
                requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
            ) -> bytes:
                await start(context)
                return b"".join([r async for r in requests])

            return grpc.stream_unary_rpc_method_handler(client_stream)
        if kind == "BidiStream":

            async def bidi_stream(
                requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[bytes]:
                await start(context)
                async for request in requests:
                    yield request

            return grpc.stream_stream_rpc_method_handler(bidi_stream)

        async def unary(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            await start(context)
            if kind == "Sleep":
                await asyncio.sleep(float(request))
            elif kind == "Fail":
                code, _, message = request.decode().partition(":")
                await context.abort(grpc.StatusCode[code], message)
            return request

        return grpc.unary_unary_rpc_method_handler(unary)


async def serve(listen: str, name: str) -> None:
    server = grpc.aio.server(handlers=[EchoHandler(name)])
    server.add_insecure_port(listen)
    await server.start()
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--name", default="grpc-backend")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.name))


# --- for tests ----------------------------------------------------------------------------------


@dataclass
class GrpcBackend:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    address: str = "127.0.0.1"
    namespace: str = "default"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def launch_grpc_backend(
    name: str, port: int, namespace: str = "default", timeout: float = 20.0
) -> GrpcBackend:
    """Start the backend on 127.0.0.1:``port`` and wait until a call succeeds."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), "--listen", f"127.0.0.1:{port}", "--name", name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    backend = GrpcBackend(name, port, proc, namespace=namespace)
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        ping: Callable[..., bytes] = channel.unary_unary("/turnout.test.Echo/Ping")
        while True:
            try:
                ping(b"ping", timeout=1.0)
                return backend
            except grpc.RpcError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    backend.stop()
                    raise AssertionError(f"gRPC backend {name} did not start") from None
                time.sleep(0.05)


if __name__ == "__main__":
    main()
