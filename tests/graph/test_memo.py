"""RuleMemo: unchanged routes are not resolved again, and the Graph is the same."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from turnout import DEFAULT_CONTROLLER_NAME, graph
from turnout.graph import routes
from turnout.graph.backends import BackendResolver, BackendTarget
from turnout.graph.memo import RuleMemo
from turnout.graph.model import RouteNode
from turnout.ir import build as ir_build
from turnout.sources.files import FileSource
from turnout.sources.snapshot import Snapshot

BASE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: turnout}
spec: {controllerName: turnout.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: turnout
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec: {ports: [{name: http, port: 80}]}
"""


def route(name: str, port: int) -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: [{{name: svc, port: {port}}}]}}]
"""


def write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_only_changed_routes_are_resolved_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "base.yaml", BASE)
    for i in range(3):
        write(tmp_path / f"r{i}.yaml", route(f"r{i}", 80))
    resolved: list[str] = []
    real = routes._resolve_rules

    def counting(node: RouteNode, resolver: BackendResolver) -> None:
        resolved.append(node.name)
        real(node, resolver)

    monkeypatch.setattr(routes, "_resolve_rules", counting)
    source, memo = FileSource([tmp_path]), RuleMemo()

    def build() -> tuple[graph.Graph, Snapshot]:
        snapshot = source.load().snapshot
        addresses = {key: "127.0.0.1" for key in snapshot.gateways}
        built = graph.build(
            snapshot, controller_name=DEFAULT_CONTROLLER_NAME, addresses=addresses, memo=memo
        )
        return built, snapshot

    build()
    assert resolved == ["r0", "r1", "r2"]
    resolved.clear()
    build()
    assert resolved == []
    write(tmp_path / "r1.yaml", route("r1", 81))  # no such port: ResolvedRefs=False
    built, snapshot = build()
    assert resolved == ["r1"]
    fresh = graph.build(
        snapshot,
        controller_name=DEFAULT_CONTROLLER_NAME,
        addresses={key: "127.0.0.1" for key in snapshot.gateways},
    )
    assert msgspec.to_builtins(ir_build.build(built)) == msgspec.to_builtins(ir_build.build(fresh))
    assert [n.common_conditions for n in built.routes.values()] == [
        n.common_conditions for n in fresh.routes.values()
    ]


def test_a_service_port_is_resolved_once_per_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules and routes naming the same Service port share one resolution; a failed one
    is worded for each field path that names it."""
    write(tmp_path / "base.yaml", BASE)
    for i in range(3):
        write(tmp_path / f"r{i}.yaml", route(f"r{i}", 80))
    rule = "{backendRefs: [{name: svc, port: 81}]}"
    write(tmp_path / "bad.yaml", route("bad", 81).replace("rules: [", f"rules: [{rule}, "))
    looked_up: list[tuple[str, int | None]] = []
    real = BackendResolver._resolve

    def counting(self: BackendResolver, target: BackendTarget, *args: object) -> object:
        looked_up.append((target.name, target.port))
        return real(self, target, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(BackendResolver, "_resolve", counting)
    snapshot = FileSource([tmp_path]).load().snapshot
    built = graph.build(
        snapshot,
        controller_name=DEFAULT_CONTROLLER_NAME,
        addresses={key: "127.0.0.1" for key in snapshot.gateways},
    )
    assert looked_up.count(("svc", 80)) == 1
    assert looked_up.count(("svc", 81)) == 2  # failures are not kept: worded per field
    assert set(built.clusters) == {"default/svc:80"}
    bad = built.routes[("default", "bad")]
    messages = [cond.message for cond in bad.common_conditions]
    for field in ("spec.rules[0].backendRefs[0]", "spec.rules[1].backendRefs[0]"):
        assert any(field in m and "has no port 81" in m for m in messages), messages
