"""The data plane's request metrics in /metrics, through `turnout run` with real traffic.

A known number of requests (answered 200 by a backend, 404 for want of a route, 503 by a
backend that refuses connections) must show up exactly in the sums over the worker
processes (each worker sends its counters every second, see turnout.dataplane.worker),
and in the in-process data plane the same way; totals never go down when a worker is
killed and restarted.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Backend, Turnout, free_port, request, service_yaml, wait_for
from tests.e2e.test_workers import GATEWAY, route_yaml, worker_pids, write


@dataclass
class Dead:
    """An endpoint nothing listens on: every connect to it is refused."""

    port: int
    address: str = "127.0.0.1"


def scrape(t: Turnout) -> dict[str, float]:
    """/metrics as {"name{labels}": value}."""
    samples = {}
    for line in t.get("/metrics").body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _setup(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> tuple[Turnout, str]:
    """Routes /a to a live backend and /dead to an endpoint that refuses connections."""
    services = service_yaml("a", "default", [backends("a")])
    services += service_yaml("dead", "default", [Dead(free_port())])  # type: ignore[list-item]
    write(tmp_path, "gw.yaml", GATEWAY + services)
    write(tmp_path, "ra.yaml", route_yaml("ra", "/a", "a"))
    write(tmp_path, "rd.yaml", route_yaml("rd", "/dead", "dead"))
    t = turnout(tmp_path)
    return t, t.address("gw")


def _expect(t: Turnout, expected: dict[str, float]) -> None:
    def matches() -> bool:
        got = scrape(t)
        return all(got.get(name) == value for name, value in expected.items())

    try:
        wait_for(matches, timeout=10.0, what="the metrics")
    except AssertionError:
        got = scrape(t)
        wrong = {name: (got.get(name), value) for name, value in expected.items()}
        raise AssertionError(f"(got, expected): {wrong}") from None


@pytest.mark.parametrize("turnout_workers", [2, 0], ids=["workers", "in-process"])
def test_request_counts_match_the_traffic(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    t, address = _setup(tmp_path, backends, turnout)
    for _ in range(10):
        assert request(address, 8080, "/a").status == 200
    for _ in range(4):
        assert request(address, 8080, "/nowhere").status == 404
    for _ in range(3):
        assert request(address, 8080, "/dead").status == 503
    _expect(
        t,
        {
            'turnout_http_requests_total{code_class="2xx"}': 10,
            'turnout_http_requests_total{code_class="4xx"}': 4,
            'turnout_http_requests_total{code_class="5xx"}': 3,
            'turnout_http_requests_total{code_class="3xx"}': 0,
            'turnout_http_local_responses_total{reason="no_route"}': 4,
            'turnout_http_local_responses_total{reason="upstream_connect_failure"}': 3,
            'turnout_http_local_responses_total{reason="no_endpoint"}': 0,
            "turnout_upstream_connect_failures_total": 3,
            "turnout_upstream_resets_total": 0,
            'turnout_backend_requests_total{backend="default/a:8080",code_class="2xx"}': 10,
            'turnout_backend_requests_total{backend="default/dead:8080",code_class="5xx"}': 3,
            'turnout_backend_requests_total{backend="default/dead:8080",code_class="2xx"}': 0,
            "turnout_downstream_connections_total": 17,  # one connection per request
            "turnout_downstream_connections_active": 0,
        },
    )
    # The dead endpoint was ejected at least once (more when an ejection ran out between
    # two requests: how many depends on timing).
    assert scrape(t)["turnout_endpoint_ejections_total"] >= 1
    # An open connection shows in the gauge, in whichever worker took it.
    with socket.create_connection((address, 8080)):
        _expect(t, {"turnout_downstream_connections_active": 1})


@pytest.fixture
def turnout_workers() -> int | None:
    return 2


def test_totals_do_not_go_down_when_a_worker_is_killed(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    t, address = _setup(tmp_path, backends, turnout)
    for _ in range(20):
        assert request(address, 8080, "/a").status == 200
    ok = 'turnout_http_requests_total{code_class="2xx"}'
    backend = 'turnout_backend_requests_total{backend="default/a:8080",code_class="2xx"}'
    _expect(t, {ok: 20, backend: 20, "turnout_downstream_connections_total": 20})
    pids = worker_pids(t.process.pid)
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)

    def restarted() -> bool:
        # Sampled all along: the sums never dip while a worker is gone or new.
        samples = scrape(t)
        assert samples[ok] == 20 and samples[backend] == 20, samples
        return samples["turnout_worker_restarts_total"] == 1 and samples["turnout_workers"] == 2

    wait_for(restarted, what="the worker restarted")
    for _ in range(10):
        assert request(address, 8080, "/a").status == 200
    _expect(t, {ok: 30, backend: 30, "turnout_downstream_connections_total": 30})
