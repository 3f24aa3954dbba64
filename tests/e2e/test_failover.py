"""Passive health checking through `turnout run --workers 2`: a backend dies mid-traffic.

An endpoint that refuses connections is ejected for a back-off period and requests
whose connect failed are retried once on another endpoint, so killing one of two
endpoints costs no request; weighted splits keep their proportions over what is left.
"""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import CLASS_YAML, Backend, Turnout, service_yaml
from turnout.dataplane.health import EJECT_BASE

GATEWAY = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: turnout
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /one}}]
    backendRefs: [{name: a, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /split}}]
    backendRefs: [{name: a, port: 8080, weight: 3}, {name: b, port: 8080, weight: 1}]
"""
)


@pytest.fixture
def turnout_workers() -> int | None:
    return 2


class Load:
    """Requests over a few keep-alive connections (and a fresh one now and then)."""

    def __init__(self, address: str, connections: int = 4) -> None:
        self.address = address
        self.conns = [self._connect() for _ in range(connections)]
        self.pods: Counter[str] = Counter()
        self.failures: list[str] = []

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.address, 8080, timeout=10)

    def run(self, path: str, count: int) -> int:
        """Send ``count`` requests; returns how many failed (non-2xx or socket error)."""
        failed = 0
        for i in range(count):
            slot = i % len(self.conns)
            if i % 25 == 0:  # fresh connections land on either worker
                self.conns[slot].close()
                self.conns[slot] = self._connect()
            conn = self.conns[slot]
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                if response.status // 100 != 2:
                    failed += 1
                    self.failures.append(f"{path}: {response.status} {body[:100]!r}")
                else:
                    self.pods[str(json.loads(body)["pod"])] += 1
            except (OSError, http.client.HTTPException) as exc:
                failed += 1
                self.failures.append(f"{path}: {exc!r}")
                conn.close()
                self.conns[slot] = self._connect()
        return failed

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def _setup(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> tuple[Turnout, dict[str, Backend]]:
    started = {name: backends(name) for name in ("a1", "a2", "b1")}
    text = GATEWAY + service_yaml("a", "default", [started["a1"], started["a2"]])
    text += service_yaml("b", "default", [started["b1"]])
    (tmp_path / "all.yaml").write_text(text)
    return turnout(tmp_path), started


def test_killed_endpoint_costs_no_request(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    t, started = _setup(tmp_path, backends, turnout)
    load = Load(t.address("gw"))
    try:
        assert load.run("/one", 100) == 0
        assert load.pods["a1"] > 0 and load.pods["a2"] > 0  # both endpoints served
        started["a2"].process.kill()
        started["a2"].process.wait(10)
        load.pods.clear()
        kill_time = time.monotonic()
        first_window = load.run("/one", 50)
        while time.monotonic() - kill_time < EJECT_BASE:
            first_window += load.run("/one", 10)
        after = load.run("/one", 300)
        # Probes of the ejected endpoint after each back-off fail over too.
        time.sleep(EJECT_BASE)
        after += load.run("/one", 100)
    finally:
        load.close()
    assert after == 0, load.failures
    assert first_window == 0, load.failures  # connects refused are retried elsewhere
    assert set(load.pods) == {"a1"}
    assert "ejected" in t.logs()


def test_weighted_split_keeps_its_proportions_over_healthy_endpoints(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    t, started = _setup(tmp_path, backends, turnout)
    started["a2"].process.kill()
    started["a2"].process.wait(10)
    load = Load(t.address("gw"))
    try:
        failed = load.run("/split", 400)
    finally:
        load.close()
    assert failed == 0, load.failures
    assert set(load.pods) == {"a1", "b1"}
    share_a = load.pods["a1"] / 400
    assert 0.66 <= share_a <= 0.84, load.pods  # weight 3 of 4, with a generous tolerance
