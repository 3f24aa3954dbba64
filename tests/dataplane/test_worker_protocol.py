"""The control channel between the control plane and a worker: frames and merging."""

from __future__ import annotations

import asyncio
import struct

import pytest

from turnout import ir
from turnout.dataplane.limits import Limits
from turnout.dataplane.worker import Applied, Apply, Init, encode, read_message
from turnout.workers import NO_WORKER, WorkerSet

from .helpers import config, listener


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_messages_round_trip_in_order() -> None:
    limits = Limits(max_header_fields=7, idle_timeout=3.5, udp_idle_timeout=0.25)
    payload = ir.to_msgpack(config((listener(8080, ()),)))
    frames = encode(Init(limits, 2.0, "debug")) + encode(Apply(3, payload))
    frames += encode(Applied(3, {"default/gw/http": None, "x": "port in use"}))
    reader = _reader(frames)
    init = await read_message(reader)
    assert init == Init(limits, 2.0, "debug")
    apply = await read_message(reader)
    assert isinstance(apply, Apply) and apply.version == 3
    assert ir.from_msgpack(apply.config).gateways[0].listeners[0].port == 8080
    applied = await read_message(reader)
    assert applied == Applied(3, {"default/gw/http": None, "x": "port in use"})
    assert await read_message(reader) is None  # end of stream: the peer is gone


async def test_a_cut_frame_is_the_end_of_the_stream() -> None:
    frame = encode(Applied(1, {}))
    assert await read_message(_reader(frame[:-1])) is None


async def test_an_oversized_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="control frame"):
        await read_message(_reader(struct.pack(">I", 1 << 31) + b"x"))


def _answered(workers: WorkerSet, *results: dict[str, str | None]) -> None:
    class FakeWorker:
        def __init__(self, answer: dict[str, str | None]) -> None:
            self.applied = 5
            self.results = answer

    workers.workers = {i: FakeWorker(r) for i, r in enumerate(results)}  # type: ignore[misc]


def test_a_listener_is_served_only_when_every_worker_serves_it() -> None:
    cfg = config(
        (listener(80, (), name="default/gw/a"), listener(81, (), name="default/gw/b")),
        version=5,
    )
    workers = WorkerSet(2)
    _answered(
        workers,
        {"default/gw/a": None, "default/gw/b": None},
        {"default/gw/a": None, "default/gw/b": "[Errno 98] Address already in use"},
    )
    merged = workers._merge(cfg, 5)
    assert merged == {"default/gw/a": None, "default/gw/b": "[Errno 98] Address already in use"}


def test_no_worker_answered_means_nothing_is_served() -> None:
    cfg = config((listener(80, (), name="default/gw/a"),), version=5)
    workers = WorkerSet(1)
    _answered(workers)
    assert workers._merge(cfg, 5) == {"default/gw/a": NO_WORKER}
    with pytest.raises(ValueError):
        WorkerSet(0)


async def test_a_restarted_worker_that_serves_less_changes_the_results() -> None:
    changed: list[dict[str, str | None]] = []
    workers = WorkerSet(2, on_results_changed=changed.append)
    workers._config = config((), version=5)
    workers.results = {"default/gw/a": None, "default/gw/b": None}
    _answered(workers, {"default/gw/a": None, "default/gw/b": None})
    restarted = workers.workers[0]
    await workers._applied(restarted, Applied(5, {"default/gw/a": None, "default/gw/b": None}))
    assert changed == []  # the same answer: nothing to republish
    await workers._applied(restarted, Applied(5, {"default/gw/a": "port in use"}))
    assert changed == [{"default/gw/a": "port in use", "default/gw/b": None}]
    assert workers.results == changed[0]
    await workers._applied(restarted, Applied(4, {"default/gw/b": "stale"}))
    assert len(changed) == 1  # an answer for an older version changes nothing
