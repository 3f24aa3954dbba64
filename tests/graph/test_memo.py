"""RuleMemo: unchanged routes are not resolved again, and the Graph is the same."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from turnout import DEFAULT_CONTROLLER_NAME, graph
from turnout.graph import routes
from turnout.graph.backends import BackendResolver
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
