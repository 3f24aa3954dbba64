"""Reloads reuse the work of unchanged objects; a changed dependency must still show.

The control plane memoises per-object work across reloads (route status items, IR rules,
compiled virtual hosts...), keyed by the identity of unchanged objects. Each test here
changes one object that routes *depend on* without changing the routes themselves, and
checks that both the status and the IR follow, exactly as a fresh process computes them.
A cache that is not invalidated by that dependency fails these tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.graph.test_incremental_graph import service as incremental_service
from turnout import ir
from turnout.runtime import Pipeline, RunOptions
from turnout.status.compute import DataPlaneFeedback, StatusClock

BASE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: turnout}
spec: {controllerName: turnout.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: turnout
  listeners:
    - name: http
      port: 8080
      protocol: HTTP
      hostname: "HOSTNAME"
      allowedRoutes:
        namespaces:
          from: Selector
          selector: {matchLabels: {env: prod}}
"""

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata: {name: apps, labels: {env: ENV}}
"""


def service(namespace: str, name: str, address: str, app_protocol: str = "") -> str:
    """A Service on port 80 and its EndpointSlice (one endpoint at ``address``)."""
    return incremental_service(namespace, name, address, 80, app_protocol)


GRANT = """\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: apps-to-db, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]
  to: [{group: "", kind: Service}]
"""


def route(name: str, backend_namespace: str, backend: str) -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: apps}}
spec:
  parentRefs: [{{name: gw, namespace: infra}}]
  hostnames: [{name}.example.com]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: /{name}}}}}]
      backendRefs: [{{name: {backend}, namespace: {backend_namespace}, port: 80}}]
"""


def write(path: Path, text: str) -> None:
    """Atomically, as editors do: a new inode, so the file source sees the change."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path / "base.yaml", BASE.replace("HOSTNAME", "*.example.com"))
    write(tmp_path / "ns.yaml", NAMESPACE.replace("ENV", "prod"))
    write(tmp_path / "web.yaml", service("apps", "web", "10.0.0.1"))
    write(tmp_path / "db.yaml", service("other", "db", "10.0.0.2"))
    write(tmp_path / "grant.yaml", GRANT)
    for i in range(3):  # the routes never change in these tests
        write(tmp_path / f"route-web-{i}.yaml", route(f"web{i}", "apps", "web"))
    write(tmp_path / "route-db.yaml", route("db", "other", "db"))
    return tmp_path


def pipeline(tree: Path) -> Pipeline:
    return Pipeline(RunOptions(paths=(tree,)), clock=StatusClock(lambda: "T"))


def state(p: Pipeline) -> tuple[dict[str, Any], bytes]:
    """(route name -> our parent conditions, IR JSON without the version)."""
    loaded, built, config = p.compile()
    items = p.status(loaded, built, DataPlaneFeedback(applied=True))
    routes = {
        item["metadata"]["name"]: [
            {k: v for k, v in cond.items() if k != "observedGeneration"}
            for parent in item.get("status", {}).get("parents", [])
            for cond in parent["conditions"]
        ]
        for item in items
        if item["kind"] == "HTTPRoute"
    }
    return routes, ir.to_json(ir.Config(gateways=config.gateways, clusters=config.clusters))


def condition(routes: dict[str, Any], name: str, kind: str) -> tuple[str, str]:
    found = [c for c in routes[name] if c["type"] == kind]
    assert len(found) == 1, routes[name]
    return found[0]["status"], found[0]["reason"]


def reload_matches_fresh(p: Pipeline, tree: Path) -> tuple[dict[str, Any], bytes]:
    """The reloaded state, checked equal to what a fresh pipeline computes."""
    reloaded = state(p)
    assert reloaded == state(pipeline(tree))
    return reloaded


def test_unchanged_reload_gives_the_same_result(tree: Path) -> None:
    p = pipeline(tree)
    first = state(p)
    assert state(p) == first
    assert condition(first[0], "web0", "Accepted") == ("True", "Accepted")
    assert condition(first[0], "db", "ResolvedRefs") == ("True", "ResolvedRefs")


def test_service_removed_then_back(tree: Path) -> None:
    p = pipeline(tree)
    before = state(p)
    (tree / "web.yaml").unlink()
    routes, config = reload_matches_fresh(p, tree)
    for i in range(3):
        assert condition(routes, f"web{i}", "ResolvedRefs") == ("False", "BackendNotFound")
    assert b'"error_status":500' in config and b"apps/web:80" not in config
    write(tree / "web.yaml", service("apps", "web", "10.0.0.1"))
    assert reload_matches_fresh(p, tree) == before


def test_service_port_protocol_changes(tree: Path) -> None:
    p = pipeline(tree)
    state(p)
    write(tree / "web.yaml", service("apps", "web", "10.0.0.1", app_protocol="kubernetes.io/wss"))
    routes, _ = reload_matches_fresh(p, tree)
    assert condition(routes, "web1", "ResolvedRefs") == ("False", "UnsupportedProtocol")


def test_endpoints_change_reaches_the_ir(tree: Path) -> None:
    p = pipeline(tree)
    state(p)
    write(tree / "web.yaml", service("apps", "web", "10.0.0.9"))
    _, config = reload_matches_fresh(p, tree)
    assert b"10.0.0.9" in config and b"10.0.0.1" not in config


def test_reference_grant_removed_then_back(tree: Path) -> None:
    p = pipeline(tree)
    before = state(p)
    (tree / "grant.yaml").unlink()
    routes, config = reload_matches_fresh(p, tree)
    assert condition(routes, "db", "ResolvedRefs") == ("False", "RefNotPermitted")
    assert condition(routes, "web0", "ResolvedRefs") == ("True", "ResolvedRefs")
    assert b"other/db:80" not in config
    write(tree / "grant.yaml", GRANT)
    assert reload_matches_fresh(p, tree) == before


def test_namespace_labels_decide_attachment(tree: Path) -> None:
    p = pipeline(tree)
    before = state(p)
    write(tree / "ns.yaml", NAMESPACE.replace("ENV", "dev"))
    routes, config = reload_matches_fresh(p, tree)
    for name in ("web0", "web1", "web2", "db"):
        assert condition(routes, name, "Accepted") == ("False", "NotAllowedByListeners")
    assert b"httproute/" not in config
    write(tree / "ns.yaml", NAMESPACE.replace("ENV", "prod"))
    assert reload_matches_fresh(p, tree) == before


def test_listener_hostname_decides_attachment(tree: Path) -> None:
    p = pipeline(tree)
    state(p)
    write(tree / "base.yaml", BASE.replace("HOSTNAME", "web1.example.com"))
    routes, config = reload_matches_fresh(p, tree)
    assert condition(routes, "web1", "Accepted") == ("True", "Accepted")
    assert condition(routes, "web0", "Accepted") == ("False", "NoMatchingListenerHostname")
    assert b"httproute/apps/web1/" in config and b"httproute/apps/web0/" not in config


def test_one_route_changes_and_the_others_stay(tree: Path) -> None:
    p = pipeline(tree)
    routes, config = state(p)
    write(tree / "route-web-1.yaml", route("web1", "other", "db"))  # the grant covers it
    routes, config = reload_matches_fresh(p, tree)
    assert condition(routes, "web1", "ResolvedRefs") == ("True", "ResolvedRefs")
    (tree / "route-web-1.yaml").unlink()
    routes, config = reload_matches_fresh(p, tree)
    assert "web1" not in routes and b"httproute/apps/web1/" not in config


def test_unchanged_virtual_hosts_are_the_very_same_objects(tree: Path) -> None:
    """The data plane reuses compiled virtual hosts by identity: an unchanged one must be
    handed over as the same object, a changed one as a new one."""
    p = pipeline(tree)
    _, _, first = p.compile()
    write(tree / "route-web-1.yaml", route("web1", "other", "db"))
    _, _, second = p.compile()

    def vhosts(config: ir.Config) -> dict[str, ir.VirtualHost]:
        (listener,) = config.gateways[0].listeners
        return {vhost.hostname: vhost for vhost in listener.virtual_hosts}

    before, after = vhosts(first), vhosts(second)
    assert (
        before.keys()
        == after.keys()
        == {"web0.example.com", "web1.example.com", "web2.example.com", "db.example.com"}
    )
    assert after["web0.example.com"] is before["web0.example.com"]
    assert after["web1.example.com"] is not before["web1.example.com"]
    assert after["web1.example.com"] != before["web1.example.com"]
