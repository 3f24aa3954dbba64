"""MirrorExchange without sockets: bounded buffering, and never reusing a half-sent copy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from turnout.dataplane import mirror as mirror_mod
from turnout.dataplane.mirror import MIRROR_BUFFER, MirrorExchange


class FakeTransport:
    def __init__(self) -> None:
        self.buffered = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered


class FakeConn:
    """Stands in for an UpstreamConnection: records writes and how it ended."""

    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.written: list[bytes] = []
        self.released: bool | None = None
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.transport.buffered += len(data)

    def release(self, keep_alive: bool) -> None:
        self.released = keep_alive

    def close(self) -> None:
        self.closed = True


class FakePool:
    def __init__(self) -> None:
        self.users: list[Any] = []

    def acquire(self, user: Any) -> None:
        self.users.append(user)


def _started(**kw: Any) -> tuple[MirrorExchange, FakePool]:
    copy = MirrorExchange(b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\n", **kw)
    pool = FakePool()
    copy.start(pool)  # type: ignore[arg-type]
    return copy, pool


async def test_body_is_sent_after_the_head_once_attached() -> None:
    copy, pool = _started(complete=False, head_request=False)
    copy.send(b"ab")
    conn = FakeConn()
    pool.users[0].attached(conn)
    copy.send(b"cde")
    copy.finish()
    assert b"".join(conn.written).endswith(b"\r\n\r\nabcde")
    copy.response_head(200, [], True)
    copy.response_complete()
    assert conn.released is True and not conn.closed


async def test_answer_before_the_whole_body_closes_the_connection() -> None:
    copy, pool = _started(complete=False, head_request=False)
    conn = FakeConn()
    pool.users[0].attached(conn)
    copy.response_head(400, [], True)
    copy.response_complete()  # the mirror answered early: the request is half-written
    assert conn.released is False
    copy.send(b"more")
    assert b"more" not in b"".join(conn.written)


async def test_waiting_for_a_connection_is_bounded() -> None:
    copy, pool = _started(complete=False, head_request=False)
    for _ in range(MIRROR_BUFFER // 1000 + 1):
        copy.send(b"x" * 1000)
    assert copy.done and copy.pending == []
    conn = FakeConn()
    pool.users[0].attached(conn)  # connected after it gave up: back to the pool unused
    assert conn.written == [] and conn.released is True


async def test_a_slow_mirror_backend_is_dropped_not_waited_for() -> None:
    copy, pool = _started(complete=False, head_request=False)
    conn = FakeConn()
    pool.users[0].attached(conn)
    conn.transport.buffered = MIRROR_BUFFER  # nothing drains
    copy.send(b"x")
    assert copy.done and conn.closed


async def test_timeout_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mirror_mod, "MIRROR_TIMEOUT", 0.01)
    copy, pool = _started(complete=True, head_request=False)
    conn = FakeConn()
    pool.users[0].attached(conn)
    await asyncio.sleep(0.05)
    assert copy.done and conn.closed
