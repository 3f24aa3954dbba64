"""The echo backend's retry simulation (``succeedAfter``), over a real socket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest

from turnout.demo.echo import start_echo

pytestmark = pytest.mark.timeout(30)


async def _get(port: int, target: str, headers: str = "") -> tuple[int, dict[str, object]]:
    """One request on a fresh connection: (status, JSON body); (0, {}) on a reset/close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: h\r\n{headers}\r\n".encode())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return 0, {}
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        return int(head.split(b" ")[1]), json.loads(body)
    finally:
        writer.close()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = await start_echo("127.0.0.1", 0, name="echo")
    async with server:
        yield int(server.sockets[0].getsockname()[1])


async def test_plain_request_unchanged(port: int) -> None:
    status, body = await _get(port, "/plain?a=1")
    assert status == 200
    assert "attempt" not in body and body["path"] == "/plain?a=1"


async def test_succeed_after_status(port: int) -> None:
    target = "/r?succeedAfter=2&status=503&key=unit-status"
    results = [await _get(port, target) for _ in range(3)]
    assert [s for s, _ in results] == [503, 503, 200]
    assert [b["attempt"] for _, b in results] == [1, 2, 3]
    # The key counts requests whatever their other parameters: 4th request for it.
    assert (await _get(port, "/other?key=unit-status"))[1]["attempt"] == 4


async def test_succeed_after_defaults_and_headers(port: int) -> None:
    # No key: the request target is the key; default failure status 500.
    assert [(await _get(port, "/d?succeedAfter=1"))[0] for _ in range(2)] == [500, 200]
    headers = "x-echo-succeed-after: 1\r\nx-echo-key: unit-hdr\r\nx-echo-status: 502\r\n"
    assert [(await _get(port, "/h", headers))[0] for _ in range(2)] == [502, 200]


async def test_fail_with_reset_and_delay_retry(port: int) -> None:
    target = "/x?succeedAfter=1&failWith=reset&delayRetry=200ms&key=unit-reset"
    started = time.monotonic()
    assert (await _get(port, target))[0] == 0
    assert time.monotonic() - started >= 0.19
    started = time.monotonic()
    status, body = await _get(port, target)
    assert (status, body["attempt"]) == (200, 2)
    assert time.monotonic() - started < 0.19
