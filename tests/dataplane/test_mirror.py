"""MirrorExchange without sockets: bounded buffering, and never reusing a half-sent copy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from turnout.dataplane import mirror as mirror_mod
from turnout.dataplane.mirror import MIRROR_BUFFER, MirrorExchange
from turnout.dataplane.upstream import EndpointPool, UpstreamConnection, UpstreamUser


class FakeTransport:
    """Just enough of asyncio.Transport for an UpstreamConnection: records what is written."""

    def __init__(self) -> None:
        self.buffered = 0
        self.written: list[bytes] = []
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.buffered += len(data)

    def abort(self) -> None:
        self.aborted = True


class Pool:
    """A real pool (compiled classes cannot be subclassed here) whose connector only
    remembers who asked for a connection."""

    def __init__(self) -> None:
        self.users: list[Any] = []
        self.pool = EndpointPool("192.0.2.1", 80, connector=self._remember)
        self.idle = self.pool.idle

    def _remember(self, pool: EndpointPool, user: UpstreamUser) -> None:
        self.users.append(user)


def _connection(pool: EndpointPool) -> tuple[UpstreamConnection, FakeTransport]:
    conn = UpstreamConnection(pool)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def _started(**kw: Any) -> tuple[MirrorExchange, Pool]:
    copy = MirrorExchange(b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\n", **kw)
    pool = Pool()
    copy.start(pool.pool)
    return copy, pool


async def test_body_is_sent_after_the_head_once_attached() -> None:
    copy, pool = _started(complete=False, head_request=False)
    copy.send(b"ab")
    conn, transport = _connection(pool.pool)
    pool.users[0].attached(conn)
    copy.send(b"cde")
    copy.finish()
    assert b"".join(transport.written).endswith(b"\r\n\r\nabcde")
    copy.response_head(200, [], True)
    copy.response_complete()
    assert conn in pool.idle and not conn.closed


async def test_answer_before_the_whole_body_closes_the_connection() -> None:
    copy, pool = _started(complete=False, head_request=False)
    conn, transport = _connection(pool.pool)
    pool.users[0].attached(conn)
    copy.response_head(400, [], True)
    copy.response_complete()  # the mirror answered early: the request is half-written
    assert conn.closed and transport.aborted
    copy.send(b"more")
    assert b"more" not in b"".join(transport.written)


async def test_waiting_for_a_connection_is_bounded() -> None:
    copy, pool = _started(complete=False, head_request=False)
    for _ in range(MIRROR_BUFFER // 1000 + 1):
        copy.send(b"x" * 1000)
    assert copy.done and copy.pending == []
    conn, transport = _connection(pool.pool)
    pool.users[0].attached(conn)  # connected after it gave up: back to the pool unused
    assert transport.written == [] and conn in pool.idle


async def test_a_slow_mirror_backend_is_dropped_not_waited_for() -> None:
    copy, pool = _started(complete=False, head_request=False)
    conn, transport = _connection(pool.pool)
    pool.users[0].attached(conn)
    transport.buffered = MIRROR_BUFFER  # nothing drains
    copy.send(b"x")
    assert copy.done and conn.closed


async def test_timeout_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mirror_mod, "MIRROR_TIMEOUT", 0.01)
    copy, pool = _started(complete=True, head_request=False)
    conn, _ = _connection(pool.pool)
    pool.users[0].attached(conn)
    await asyncio.sleep(0.05)
    assert copy.done and conn.closed
