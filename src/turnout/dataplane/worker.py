"""worker: one data-plane worker process, programmed by the control plane over a socket.

Place in the pipeline: ``turnout run --workers N`` (see :mod:`turnout.workers`, the
control-plane side) starts N processes running :func:`main`. Each owns a
:class:`turnout.dataplane.server.DataPlane` whose listening sockets are bound with
SO_REUSEPORT, so the kernel spreads new connections over the workers. This module
imports only the data plane and ``turnout.ir``: a worker never sees graph or sources.

The control channel is a stream socket (one end of a socketpair, inherited as a file
descriptor) carrying frames: a 4-byte big-endian length, then a msgpack message
(:class:`Init`, :class:`Apply` from the control plane; :class:`Applied` back). The
first message is ``Init`` (limits, drain timeout, log level); then each ``Apply``
carries a configuration version and its IR as msgpack, or each ``ApplyDelta`` what
changed since the configuration the worker applied last (:mod:`turnout.ir.delta`; a
delta against another configuration is a control channel failure: the worker drains
and is restarted with the whole configuration), and is answered by ``Applied``
with the same version and the per-listener results of :meth:`DataPlane.apply`
(None when served, else why not).

Counters: every :data:`STATS_INTERVAL` seconds, and once more after draining, the worker
sends ``Stats``, a :class:`turnout.dataplane.snapshot.Snapshot` of its data-plane counters
(:mod:`turnout.dataplane.stats`). Pushed rather than polled: the control plane then needs
no request/answer matching (an ``Applied`` may be awaited on the same channel), a worker
stuck in a long apply simply sends later, and the snapshot taken after draining -- the
requests finished during the drain -- reaches the control plane before the channel
closes, which a poll could miss. A worker killed outright loses at most the last
interval's counts; its last snapshot stays in the totals (see :mod:`turnout.workers`).

Stopping: SIGTERM, or the control channel closing (the control plane is gone), drains:
the listening sockets close at once (new connections are refused), idle keep-alive
connections close, requests in flight get up to the drain timeout, then the process
exits 0. SIGINT and SIGHUP are ignored: Ctrl-C in a terminal reaches the whole process
group, and the control plane then sends SIGTERM itself (a worker that left on its own
would look like a crash and be restarted); re-reading files is the control plane's job.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
import uvloop

from turnout import ir
from turnout.dataplane.limits import Limits
from turnout.dataplane.snapshot import Snapshot
from turnout.ir.delta import ConfigDelta, patch
from turnout.util.collector import collector_paused

if TYPE_CHECKING:
    from turnout.dataplane.server import DataPlane

log = logging.getLogger("turnout.worker")

STATS_INTERVAL = 1.0  # seconds between two Stats messages of a worker
_LENGTH = struct.Struct(">I")
MAX_FRAME = 1 << 30  # an IR of many thousand routes is a few MB; this only stops garbage


class Init(msgspec.Struct, tag=True):
    """The first message: how this worker serves."""

    limits: Limits
    drain_timeout: float
    log_level: str = "info"


class Apply(msgspec.Struct, tag=True):
    version: int
    config: bytes  # ir.to_msgpack


class ApplyDelta(msgspec.Struct, tag=True):
    """A configuration as what changed since the one the worker applied last."""

    version: int
    delta: ConfigDelta


class Applied(msgspec.Struct, tag=True):
    version: int
    results: dict[str, str | None]  # listener name -> None (serving) or why not


class Stats(msgspec.Struct, tag=True):
    """The worker's data-plane counters (sent every STATS_INTERVAL and after draining)."""

    snapshot: Snapshot


Message = Init | Apply | ApplyDelta | Applied | Stats
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    body = _encoder.encode(message)
    return _LENGTH.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """The next frame's message; None at end of stream."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        (size,) = _LENGTH.unpack(head)
        if size > MAX_FRAME:
            raise ValueError(f"control frame of {size} bytes")
        message: Message = _decoder.decode(await reader.readexactly(size))
        return message
    except asyncio.IncompleteReadError:
        return None


class Worker:
    """The worker's side of the control channel."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.dataplane: DataPlane | None = None
        self.config: ir.Config | None = None  # the last one applied: deltas build on it
        self.drain_timeout = 5.0
        self.stop = asyncio.Event()

    async def serve(self) -> None:
        """Apply configurations until told to stop, then drain."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop.set)
        for sig in (signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: None)  # see the module docstring
        commands = asyncio.create_task(self._commands())
        reports = asyncio.create_task(self._report_stats())
        await self.stop.wait()
        for task in (commands, reports):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.dataplane is not None:
            await self.dataplane.close(self.drain_timeout)
            self._send_stats()  # what the drained requests added
        self.writer.close()
        log.info("worker %d drained; exiting", os.getpid())

    async def _commands(self) -> None:
        try:
            while True:
                message = await read_message(self.reader)
                if message is None:
                    log.info("worker %d: control plane gone; draining", os.getpid())
                    break
                if isinstance(message, Init):
                    self._init(message)
                elif isinstance(message, Apply | ApplyDelta):
                    await self._apply(message)
        except (OSError, ValueError, msgspec.DecodeError):
            log.exception("worker %d: control channel failed; draining", os.getpid())
        finally:
            self.stop.set()

    async def _report_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            self._send_stats()

    def _send_stats(self) -> None:
        if self.dataplane is not None and not self.writer.is_closing():
            self.writer.write(encode(Stats(self.dataplane.stats_snapshot())))

    def _init(self, message: Init) -> None:
        logging.getLogger().setLevel(message.log_level.upper())
        self.drain_timeout = message.drain_timeout
        from turnout.dataplane.server import DataPlane  # imported by main() already

        self.dataplane = DataPlane(message.limits)

    async def _apply(self, message: Apply | ApplyDelta) -> None:
        if self.dataplane is None:
            from turnout.dataplane.server import DataPlane

            self.dataplane = DataPlane()
        # No cyclic garbage collection while a configuration is decoded and compiled:
        # at thousands of routes that allocates enough to start full collections of
        # the whole heap, which delayed serving a one-route change by 100-300 ms.
        with collector_paused():
            if isinstance(message, ApplyDelta):
                if self.config is None:
                    raise ValueError(f"configuration {message.version}: a delta, and no base")
                config = patch(self.config, message.delta)  # ValueError: not our base
            else:
                config = ir.from_msgpack(message.config)
            results = await self.dataplane.apply(config)
            self.config = config
        self.writer.write(encode(Applied(message.version, results)))
        await self.writer.drain()


async def _serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    await Worker(reader, writer).serve()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="turnout data-plane worker (internal)")
    parser.add_argument("--fd", type=int, required=True, help="control socket descriptor")
    parser.add_argument("--index", type=int, default=0)
    args = parser.parse_args(argv)
    # The data plane is imported here rather than with this module: the control plane
    # imports this module for its messages (Init, Apply, Applied) and serves nothing.
    import turnout.dataplane.server  # noqa: F401

    logging.basicConfig(
        level=logging.INFO,
        format=f"%(name)s[{args.index}:{os.getpid()}]: %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    uvloop.run(_serve(args.fd))


if __name__ == "__main__":
    main()
