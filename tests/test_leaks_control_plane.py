"""Leak tests of the control plane's reload path: route edits, hundreds of them.

Issue 6 cites gateways whose control planes leaked memory while routes were edited. Here
``turnout run``'s reload path (``Standalone.reload`` with the in-process data plane:
files -> Snapshot -> graph, patched incrementally -> status -> IR -> ``DataPlane.apply``)
serves 100 routes while changes come one at a time, as the file watcher reports them:

* an existing route's path edited (ten routes take turns);
* a route created under a name never used before and the previous one deleted (names
  churn, as with a route per deployment or per preview environment);
* a Service's endpoint moved;
* a Gateway listener replaced by one under a new name.

After a warm-up, the memory still allocated (tests/retained.py) must not grow with the
number of changes: every cache along the path (file source, rule memo, IR build cache,
route status cache, status clock, compiled virtual hosts) must forget what no
configuration uses any more. Nothing is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port
from tests.retained import assert_no_leak, retained_async, tracing
from turnout.runtime import RunOptions, Standalone
from turnout.sources import yamldata

pytestmark = pytest.mark.timeout(120)

ROUTES = 100
SERVICES = 10
EDITED = 10  # routes whose path is edited, in turn: all of them during the warm-up
KINDS = 4  # kinds of change, in turn (see Edits.next)
WARMUP = 100
CHANGES = 300
# What CHANGES changes may leave allocated in total: the control plane's dicts of objects
# are resized now and then (4-16 KiB measured); a status item or a route's IR kept per
# change would be KiBs each, the forgotten clock entries were 455 bytes per change.
FLOOR = 32 * 1024

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: turnout}
spec: {controllerName: turnout.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: turnout
  listeners:
    - {name: http, port: 80, protocol: HTTP}
"""
EXTRA_LISTENER = (
    "    - {{name: extra-{n:06d}, port: 80, protocol: HTTP, hostname: x{n}.example.com}}\n"
)


def service(index: int, address: str) -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: svc-{index}, namespace: default}}
spec:
  ports: [{{name: http, port: 80}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-{index}-1
  namespace: default
  labels: {{kubernetes.io/service-name: svc-{index}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}]
endpoints: [{{addresses: ["{address}"]}}]
"""


def route(name: str, path: str, backend: int) -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{name}.example.com]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {{set: [{{name: x-route, value: {name}}}]}}
      backendRefs: [{{name: svc-{backend}, port: 80}}]
"""


def write(path: Path, text: str) -> None:
    """Atomically, as editors and kubectl-like tools do (a new inode)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Edits:
    """The changes, in turn; each returns the paths it touched (what the watcher reports)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def initial(self) -> None:
        write(self.root / "gateway.yaml", GATEWAY)
        for i in range(SERVICES):
            write(self.root / f"svc-{i}.yaml", service(i, f"10.1.0.{i + 1}"))
        for i in range(ROUTES):
            write(self.root / f"route-{i}.yaml", route(f"route-{i}", f"/r{i}", i % SERVICES))
        write(self.root / "churn-000000.yaml", route("churn-000000", "/churn", 0))

    def next(self) -> set[Path]:
        self.count += 1
        n = self.count
        kind = n % KINDS
        if kind == 0:  # edit a route's path
            i = n // KINDS % EDITED * (ROUTES // EDITED)
            path = self.root / f"route-{i}.yaml"
            write(path, route(f"route-{i}", f"/r{i}/v{n:06d}", i % SERVICES))
            return {path}
        if kind == 1:  # a new name, the previous one deleted
            old = self.root / f"churn-{max(n - KINDS, 0):06d}.yaml"
            new = self.root / f"churn-{n:06d}.yaml"
            old.unlink()
            write(new, route(f"churn-{n:06d}", "/churn", n % SERVICES))
            return {old, new}
        if kind == 2:  # an endpoint moves
            i = n % SERVICES
            path = self.root / f"svc-{i}.yaml"
            write(path, service(i, f"10.2.{100 + n % 100}.{100 + n % 150}"))
            return {path}
        path = self.root / "gateway.yaml"  # a listener renamed (on the same port)
        write(path, GATEWAY + EXTRA_LISTENER.format(n=n))
        return {path}

    def last_churned(self) -> str:
        return f"churn-{self.count - (self.count - 1) % KINDS:06d}"


@contextlib.contextmanager
def bounded_caches_filled() -> Iterator[None]:
    """The caches that are bounded on purpose, filled as a long-running process fills
    them (their growth up to the bound is no leak, and this test sees too few changes to
    reach it); as they were afterwards. yamldata._resolved keeps the YAML tag of up to
    4,096 distinct scalar values, and the churned names, paths and addresses are new."""
    resolved = yamldata._resolved
    before = dict(resolved)
    for i in range(yamldata._RESOLVED_MAX - len(resolved)):
        resolved[f"filler-{i}"] = "tag:yaml.org,2002:str"
    try:
        yield
    finally:
        resolved.clear()
        resolved.update(before)


async def test_route_edits_retain_nothing(tmp_path: Path) -> None:
    edits = Edits(tmp_path)
    edits.initial()
    port = free_port()
    standalone = Standalone(
        RunOptions(
            paths=(tmp_path,),
            admin_port=free_port(),
            port_offset=port - 80,
            address_pool=ipaddress.ip_network("127.0.0.1/32"),
            resync_interval=0,
        )
    )

    async def change() -> None:
        await standalone.reload(edits.next())
        assert not standalone.load_errors()
        # A reload may complete without yielding; between two, the event loop runs (it
        # waits for the watcher), and purges the timers the reloads cancelled.
        await asyncio.sleep(0)

    try:
        # Traced from the first load on: the changes replace what it made.
        with bounded_caches_filled(), tracing():
            await standalone.reload()
            served = standalone.config_json()
            assert f"/r{ROUTES - 1}".encode() in served and b"churn-000000" in served
            # The runtime's own full collection: it freezes what survives each reload,
            # and only collect_all (every 100 reloads at most) collects frozen garbage.
            growth = await retained_async(
                f"{CHANGES} changes at {ROUTES} routes",
                change,
                warmup=WARMUP,
                steps=CHANGES,
                collect=standalone.collector.collect_all,
            )
        assert_no_leak(growth, floor=FLOOR)
        assert f"{edits.last_churned()}.example".encode() in standalone.config_json()
    finally:
        await standalone.stop()
