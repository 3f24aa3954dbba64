"""Passive health checking: ejection back-off, picking around ejected endpoints, fail-over."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from turnout.dataplane import DataPlane
from turnout.dataplane.health import EJECT_BASE, EJECT_MAX, EndpointHealth
from turnout.dataplane.upstream import EndpointPool, UpstreamCluster
from turnout.demo.echo import start_echo

from .helpers import Client, free_port, rule, simple_config, to

ADDR = "127.0.0.1"


# --- EndpointHealth ------------------------------------------------------------------------


def test_first_failure_ejects_for_the_base_period() -> None:
    health = EndpointHealth()
    assert health.available(100.0)
    assert health.failed(100.0) == EJECT_BASE
    assert not health.available(100.0 + EJECT_BASE / 2)
    assert health.available(100.0 + EJECT_BASE)


def test_back_off_doubles_up_to_the_cap_and_resets_on_success() -> None:
    health = EndpointHealth()
    now = 0.0
    durations = []
    for _ in range(10):
        duration = health.failed(now)
        assert duration is not None
        durations.append(duration)
        now += duration  # the half-open probe after each ejection fails again
    assert durations[:4] == [EJECT_BASE, 2 * EJECT_BASE, 4 * EJECT_BASE, 8 * EJECT_BASE]
    assert max(durations) == EJECT_MAX
    assert durations[-1] == EJECT_MAX
    health.succeeded()
    assert health.available(now) and health.failures == 0
    assert health.failed(now) == EJECT_BASE


def test_failures_while_ejected_do_not_extend_the_ejection() -> None:
    health = EndpointHealth()
    assert health.failed(10.0) == EJECT_BASE
    # Fifty connects that were already under way fail too: one ejection, not fifty.
    for _ in range(50):
        assert health.failed(10.1) is None
    assert health.failures == 1 and health.ejections == 1
    assert health.available(10.0 + EJECT_BASE)


def test_back_off_never_overflows() -> None:
    health = EndpointHealth()
    health.failures = 5000
    assert health.failed(0.0) == EJECT_MAX


# --- UpstreamCluster.pick -----------------------------------------------------------------


def _cluster(n: int) -> tuple[UpstreamCluster, list[EndpointPool]]:
    pools = [EndpointPool("127.0.0.1", 1000 + i) for i in range(n)]
    return UpstreamCluster("c", tuple(pools)), pools


def test_pick_skips_ejected_endpoints_round_robin() -> None:
    cluster, pools = _cluster(3)
    pools[1].health.failed(time.monotonic())
    picked = Counter(cluster.pick() for _ in range(100))
    assert picked[pools[1]] == 0
    assert picked[pools[0]] == picked[pools[2]] == 50


def test_an_ejected_endpoint_comes_back_when_its_ejection_passed() -> None:
    cluster, pools = _cluster(2)
    pools[0].health.failed(time.monotonic() - 2 * EJECT_MAX)  # long over
    picked = Counter(cluster.pick() for _ in range(10))
    assert picked == {pools[0]: 5, pools[1]: 5}
    pools[0].health.succeeded()
    assert pools[0].health.ejected_until == 0.0


def test_all_ejected_picks_the_one_back_soonest() -> None:
    cluster, pools = _cluster(3)
    now = time.monotonic()
    for pool, failures in zip(pools, (3, 1, 2), strict=True):
        pool.health.failures = failures - 1
        pool.health.failed(now)
    assert {cluster.pick() for _ in range(6)} == {pools[1]}


def test_pick_avoiding_an_endpoint() -> None:
    cluster, pools = _cluster(3)
    for _ in range(9):
        assert cluster.pick(avoid=pools[0]) in (pools[1], pools[2])
    single, [only] = _cluster(1)
    assert single.pick(avoid=only) is None
    assert single.pick() is only
    assert UpstreamCluster("empty", ()).pick() is None


# --- through a DataPlane --------------------------------------------------------------------


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=1.0)


async def _get_many(port: int, count: int) -> Counter[tuple[int, str | None]]:
    """``count`` requests on one keep-alive connection: (status, pod) counts."""
    client = await Client.connect(ADDR, port)
    seen: Counter[tuple[int, str | None]] = Counter()
    try:
        for _ in range(count):
            await client.send(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
            response = await client.response()
            pod = response.json()["pod"] if response.status == 200 else None
            seen[(response.status, pod)] += 1
    finally:
        await client.close()
    return seen


@pytest.mark.timeout(30)
async def test_refused_endpoint_is_ejected_and_its_requests_fail_over(
    dataplane: DataPlane,
) -> None:
    live = await start_echo(ADDR, 0, name="live")
    dead_port = free_port()  # nothing listens: connections are refused
    try:
        endpoints = [(ADDR, dead_port), (ADDR, live.sockets[0].getsockname()[1])]
        port = free_port()
        routes = (rule(backends=(to("a"),)),)
        await dataplane.apply(simple_config(port, routes, {"a": endpoints}))
        seen = await _get_many(port, 40)
        assert seen == {(200, "live"): 40}  # the first refusal was retried on "live"
        table = dataplane.table
        assert table is not None
        dead = next(p for p in dataplane._pools.values() if p.port == dead_port)
        assert dead.health.ejections == 1  # ejected once; not tried again meanwhile
        assert not dead.health.available(time.monotonic())
    finally:
        live.close()


@pytest.mark.timeout(30)
async def test_single_dead_endpoint_gives_503(dataplane: DataPlane) -> None:
    port = free_port()
    routes = (rule(backends=(to("a"),)),)
    await dataplane.apply(simple_config(port, routes, {"a": [(ADDR, free_port())]}))
    seen = await _get_many(port, 3)
    assert seen == {(503, None): 3}  # panic: still tried, and the failure is honest


@pytest.mark.timeout(30)
async def test_weights_hold_over_healthy_endpoints(dataplane: DataPlane) -> None:
    a1 = await start_echo(ADDR, 0, name="a1")
    b1 = await start_echo(ADDR, 0, name="b1")
    try:
        clusters = {
            "a": [(ADDR, a1.sockets[0].getsockname()[1]), (ADDR, free_port())],
            "b": [(ADDR, b1.sockets[0].getsockname()[1])],
        }
        port = free_port()
        routes = (rule(backends=(to("a", 3), to("b", 1))),)
        await dataplane.apply(simple_config(port, routes, clusters))
        seen = await _get_many(port, 400)
        assert sum(n for (status, _), n in seen.items() if status != 200) == 0
        share_a = seen[(200, "a1")] / 400
        assert 0.68 <= share_a <= 0.82  # 75 % within a generous tolerance
    finally:
        a1.close()
        b1.close()


@pytest.mark.timeout(30)
async def test_a_success_resets_the_back_off(dataplane: DataPlane) -> None:
    backend_port = free_port()
    port = free_port()
    routes = (rule(backends=(to("a"),)),)
    await dataplane.apply(simple_config(port, routes, {"a": [(ADDR, backend_port)]}))
    assert await _get_many(port, 1) == {(503, None): 1}
    pool = next(iter(dataplane._pools.values()))
    assert pool.health.failures == 1
    server = await start_echo(ADDR, backend_port, name="back")
    try:
        pool.health.ejected_until = time.monotonic() - 0.01  # as if the ejection passed
        assert await _get_many(port, 2) == {(200, "back"): 2}
        assert pool.health.failures == 0 and pool.health.ejected_until == 0.0
    finally:
        server.close()
        await asyncio.sleep(0)
