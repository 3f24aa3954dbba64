"""The admin API, spoken to over real loopback sockets with raw HTTP/1.1 bytes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from turnout.admin import AdminProvider, start_admin


@dataclass
class FakeProvider:
    is_ready: bool = True
    items: list[dict[str, Any]] = field(
        default_factory=lambda: [{"kind": "Gateway", "metadata": {"name": "gw"}, "status": {}}]
    )
    config: bytes = b'{"version": 3}'
    fail_status: bool = False

    def healthy(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.is_ready

    def status_items(self) -> list[dict[str, Any]]:
        if self.fail_status:
            raise RuntimeError("boom")
        return self.items

    def load_errors(self) -> list[str]:
        return ["x.yaml:3: invalid YAML"]

    def config_json(self) -> bytes:
        return self.config


def _as_provider(p: FakeProvider) -> AdminProvider:
    return p  # checked by mypy against the Protocol


@dataclass
class Admin:
    provider: FakeProvider
    port: int


@pytest.fixture
async def admin() -> AsyncIterator[Admin]:
    provider = FakeProvider()
    server = await start_admin("127.0.0.1", 0, _as_provider(provider))
    port = server.sockets[0].getsockname()[1]
    yield Admin(provider, port)
    server.close()
    await server.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


async def _request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return await _read_response(reader)
    finally:
        writer.close()
        await writer.wait_closed()


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n".encode()


async def test_healthz(admin: Admin) -> None:
    assert await _request(admin.port, _get("/healthz")) == (
        200,
        {"content-type": "text/plain; charset=utf-8", "content-length": "3"},
        b"ok\n",
    )


async def test_readyz_follows_provider(admin: Admin) -> None:
    status, _, body = await _request(admin.port, _get("/readyz"))
    assert (status, body) == (200, b"ready\n")
    admin.provider.is_ready = False
    status, _, body = await _request(admin.port, _get("/readyz"))
    assert (status, body) == (503, b"not ready\n")


async def test_status_wraps_items(admin: Admin) -> None:
    status, headers, body = await _request(admin.port, _get("/status?x=1"))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"items": admin.provider.items, "errors": ["x.yaml:3: invalid YAML"]}


async def test_status_follows_each_new_version_of_the_items(admin: Admin) -> None:
    """/status is rendered once per version (list identity) and is never stale."""
    errors = ["x.yaml:3: invalid YAML"]
    admin.provider.load_errors = lambda: errors  # type: ignore[method-assign]
    _, _, first = await _request(admin.port, _get("/status"))
    _, _, again = await _request(admin.port, _get("/status"))
    assert again == first
    admin.provider.items = [{"kind": "HTTPRoute", "metadata": {"name": "r"}, "status": {}}]
    _, _, body = await _request(admin.port, _get("/status"))
    assert json.loads(body)["items"] == admin.provider.items
    errors = []
    _, _, body = await _request(admin.port, _get("/status"))
    assert json.loads(body) == {"items": admin.provider.items, "errors": []}


async def test_config_is_provider_bytes(admin: Admin) -> None:
    status, headers, body = await _request(admin.port, _get("/config"))
    assert (status, headers["content-type"], body) == (200, "application/json", b'{"version": 3}')


async def test_metrics_prometheus_text(admin: Admin) -> None:
    status, headers, body = await _request(admin.port, _get("/metrics"))
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=")
    assert b"# TYPE" in body


async def test_unknown_path_404(admin: Admin) -> None:
    status, _, _ = await _request(admin.port, _get("/nope"))
    assert status == 404


async def test_post_405_with_allow(admin: Admin) -> None:
    raw = b"POST /status HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"
    status, headers, _ = await _request(admin.port, raw)
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


async def test_head_has_no_body(admin: Admin) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
    writer.write(b"HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n" + _get("/readyz"))
    head = await reader.readuntil(b"\r\n\r\n")
    assert b"content-length: 3" in head
    # The next bytes are the second response, not a body.
    status, _, body = await _read_response(reader)
    assert (status, body) == (200, b"ready\n")
    writer.close()
    await writer.wait_closed()


async def test_provider_error_is_500(admin: Admin, caplog: pytest.LogCaptureFixture) -> None:
    admin.provider.fail_status = True
    status, _, _ = await _request(admin.port, _get("/status"))
    assert status == 500
    assert "boom" in caplog.text


async def test_keep_alive_and_pipelining(admin: Admin) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
    writer.write(_get("/healthz") + _get("/readyz"))
    assert (await _read_response(reader))[2] == b"ok\n"
    assert (await _read_response(reader))[2] == b"ready\n"
    writer.write(_get("/healthz"))  # same connection, later
    assert (await _read_response(reader))[0] == 200
    writer.close()
    await writer.wait_closed()


async def test_one_byte_at_a_time(admin: Admin) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
    for i, byte in enumerate(_get("/readyz")):
        writer.write(bytes([byte]))
        if i % 7 == 0:
            await writer.drain()
    assert (await _read_response(reader))[2] == b"ready\n"
    writer.close()
    await writer.wait_closed()


async def test_connection_close_is_honoured(admin: Admin) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    status, headers, _ = await _read_response(reader)
    assert (status, headers["connection"]) == (200, "close")
    assert await reader.read() == b""  # server closed
    writer.close()
    await writer.wait_closed()


async def test_garbage_is_400_and_closed(admin: Admin) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
    writer.write(b"\x00\x01 not http\r\n\r\n")
    status, _, _ = await _read_response(reader)
    assert status == 400
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


async def test_oversized_head_is_431(admin: Admin) -> None:
    raw = b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
    writer.write(raw)
    status, _, _ = await _read_response(reader)
    assert status == 431
    writer.close()
    await writer.wait_closed()


async def test_idle_connection_is_closed() -> None:
    server = await start_admin("127.0.0.1", 0, FakeProvider(), idle_timeout=0.05)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::"])
async def test_refuses_non_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        await start_admin(host, 0, FakeProvider())


async def test_localhost_name_is_loopback() -> None:
    server = await start_admin("localhost", 0, FakeProvider())
    server.close()
    await server.wait_closed()


def test_under_uvloop() -> None:
    """The gateway runs on uvloop, whose transports are not asyncio.Transport instances."""
    import uvloop

    async def scenario() -> None:
        server = await start_admin("127.0.0.1", 0, FakeProvider())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_get("/healthz") + _get("/readyz"))
        assert (await _read_response(reader))[2] == b"ok\n"
        assert (await _read_response(reader))[2] == b"ready\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
