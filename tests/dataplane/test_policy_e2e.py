"""End-to-end: HTTPRoute timeouts (GEP-1742) and retries (GEP-1731) through DataPlane."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from turnout import ir
from turnout.dataplane import DataPlane
from turnout.demo.echo import start_echo

from .helpers import free_port, request, rule, simple_config, to

pytestmark = pytest.mark.timeout(30)

ADDR = "127.0.0.1"


class Flaky:
    """A backend that fails its first ``failures`` requests, then answers 200.

    A failure is ``status`` (a response with that status), ``"reset"`` (the connection is
    closed without a response), or ``"slow"`` (the answer comes after ``delay`` seconds).
    """

    def __init__(self, failures: int, failure: int | str, delay: float = 1.0) -> None:
        self.port = 0
        self.failures = failures
        self.failure = failure
        self.delay = delay
        self.requests = 0
        self.bodies: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, ADDR, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.bodies.append(await reader.readexactly(length))
                self.requests += 1
                status = 200
                if self.requests <= self.failures:
                    if self.failure == "reset":
                        writer.transport.abort()
                        return
                    if self.failure == "slow":
                        await asyncio.sleep(self.delay)
                    else:
                        status = int(self.failure)
                body = b"attempt %d" % self.requests
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n" % (status, len(body)))
                writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=1.0)


async def _serve(dp: DataPlane, backend_port: int, **policy: object) -> int:
    port = free_port()
    route = rule("r", backends=(to("b"),))
    route = ir.HTTPRouteRule(
        name=route.name,
        match=route.match,
        backends=route.backends,
        **policy,  # type: ignore[arg-type]
    )
    result = await dp.apply(simple_config(port, (route,), {"b": [(ADDR, backend_port)]}))
    assert set(result.values()) == {None}
    return port


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await start_echo(ADDR, 0, name="echo")
    yield int(server.sockets[0].getsockname()[1])
    server.close()


# --- timeouts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["request_timeout", "backend_request_timeout"])
async def test_timeout_gives_504(dataplane: DataPlane, echo_port: int, field: str) -> None:
    port = await _serve(dataplane, echo_port, **{field: 0.2})
    response = await request(ADDR, port, "/?delay=1s")
    assert response.status == 504
    assert (await request(ADDR, port, "/")).status == 200  # a fast one is fine


async def test_no_timeout_when_disabled(dataplane: DataPlane, echo_port: int) -> None:
    # "0s" compiles to None: no timeout at all
    port = await _serve(dataplane, echo_port, request_timeout=None)
    assert (await request(ADDR, port, "/", headers={"x-echo-delay": "300ms"})).status == 200


# --- retries ----------------------------------------------------------------------------------


async def _flaky(failures: int, failure: int | str, delay: float = 1.0) -> Flaky:
    flaky = Flaky(failures, failure, delay)
    await flaky.start()
    return flaky


@pytest.mark.parametrize(("failures", "expected"), [(2, 200), (3, 200), (4, 503)])
async def test_retry_on_listed_code(dataplane: DataPlane, failures: int, expected: int) -> None:
    flaky = await _flaky(failures, 503)
    try:
        port = await _serve(
            dataplane,
            flaky.port,
            retry=ir.RetryPolicy(attempts=3, codes=(500, 503), backoff=0.01),
        )
        response = await request(ADDR, port, "/")
        assert response.status == expected  # exhausted: the last backend status
        assert flaky.requests == min(failures + 1, 4)
    finally:
        flaky.close()


async def test_unlisted_code_is_not_retried(dataplane: DataPlane) -> None:
    flaky = await _flaky(1, 503)
    try:
        port = await _serve(dataplane, flaky.port, retry=ir.RetryPolicy(attempts=3, codes=(500,)))
        assert (await request(ADDR, port, "/")).status == 503
        assert flaky.requests == 1
    finally:
        flaky.close()


async def test_connection_reset_is_retried(dataplane: DataPlane) -> None:
    flaky = await _flaky(2, "reset")
    try:
        port = await _serve(dataplane, flaky.port, retry=ir.RetryPolicy(attempts=2))
        response = await request(ADDR, port, "/", method="POST", body=b"hello")
        assert response.status == 200 and response.body == b"attempt 3"
        assert flaky.bodies == [b"hello"] * 3  # the small body was kept and sent again
    finally:
        flaky.close()


async def test_reset_attempts_exhausted_gives_503(dataplane: DataPlane) -> None:
    flaky = await _flaky(5, "reset")
    try:
        port = await _serve(dataplane, flaky.port, retry=ir.RetryPolicy(attempts=1))
        assert (await request(ADDR, port, "/")).status == 503
        assert flaky.requests == 2
    finally:
        flaky.close()


@pytest.mark.parametrize(("failures", "expected"), [(2, 200), (3, 504)])
async def test_backend_timeout_is_retried(
    dataplane: DataPlane, failures: int, expected: int
) -> None:
    flaky = await _flaky(failures, "slow", delay=0.6)
    try:
        port = await _serve(
            dataplane,
            flaky.port,
            backend_request_timeout=0.2,
            retry=ir.RetryPolicy(attempts=2, codes=(503,)),
        )
        assert (await request(ADDR, port, "/")).status == expected
    finally:
        flaky.close()


async def test_request_timeout_bounds_all_attempts(dataplane: DataPlane) -> None:
    flaky = await _flaky(10, 503)
    try:
        port = await _serve(
            dataplane,
            flaky.port,
            request_timeout=0.3,
            retry=ir.RetryPolicy(attempts=10, codes=(503,), backoff=0.1),
        )
        assert (await request(ADDR, port, "/")).status == 504
        assert flaky.requests < 10
    finally:
        flaky.close()


async def test_large_body_is_not_retried(dataplane: DataPlane) -> None:
    flaky = await _flaky(1, "reset")
    try:
        port = await _serve(dataplane, flaky.port, retry=ir.RetryPolicy(attempts=3))
        response = await request(ADDR, port, "/", method="POST", body=b"x" * (100 * 1024))
        assert response.status == 503  # 100 KiB > the 64 KiB retry buffer
        assert flaky.requests == 1
    finally:
        flaky.close()
