"""Routes share a parentRef's verdict only when attach would decide them alike.

``attach_parents`` keeps, through one pass over the routes of a build, what ``attach``
decided per parentRef, keyed by everything it reads (graph/attachment.py ``Verdicts``).
Routes here differ in one of those things at a time, in the order a build meets them;
each must get the verdict a build without sharing gives it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout import graph
from turnout.graph import attachment, routes
from turnout.sources.files import FileSource

BASE = """\
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
    - {name: http, port: 80, protocol: HTTP, hostname: '*.example.com'}
    - {name: all, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
    - {name: grpc, port: 8081, protocol: HTTP, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}
"""


def route(
    name: str,
    *,
    kind: str = "HTTPRoute",
    namespace: str = "default",
    parent: str = "",
    hostnames: str = "[a.example.com]",
    rule: str = "{backendRefs: [{name: s, port: 80}]}",
) -> str:
    return f"""\
---
apiVersion: gateway.networking.k8s.io/v1
kind: {kind}
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  parentRefs: [{{name: gw, namespace: default{parent}}}]
  hostnames: {hostnames}
  rules: [{rule}]
"""


ROUTES = [
    route("a0"),
    route(
        "a1-invalid",
        rule="{filters: [{type: ExtensionRef, extensionRef: {group: x.io, kind: F, name: f}}], backendRefs: [{name: s, port: 80}], retry: {attempts: -1}}",
    ),
    route("a2-other-namespace", namespace="apps"),
    route("a3-section", parent=", sectionName: all"),
    route("a4-port", parent=", port: 8081"),
    route("a5-hostname", hostnames="[b.other.test]"),
    route(
        "a6-grpc",
        kind="GRPCRoute",
        parent=", port: 8081",
        rule="{backendRefs: [{name: s, port: 80}]}",
    ),
    route("a7-http", parent=", port: 8081"),
]


def verdicts(built: graph.Graph) -> dict[str, list[tuple[str, str, list[str]]]]:
    """Per route: (Accepted status, reason, listeners) of each parent."""
    out = {}
    for node in [*built.routes.values(), *built.grpc_routes.values()]:
        out[node.name] = [
            (
                next(c.status for c in p.conditions if c.type == "Accepted"),
                next(c.reason for c in p.conditions if c.type == "Accepted"),
                [listener.name for listener, _ in p.listeners],
            )
            for p in node.parents
        ]
    return out


def test_shared_verdicts_equal_unshared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "all.yaml").write_text(BASE + "".join(ROUTES))
    snapshot = FileSource([tmp_path]).load().snapshot
    options = {
        "controller_name": "turnout.dev/gateway-controller",
        "addresses": {("default", "gw"): "127.0.0.1"},
    }
    shared = verdicts(graph.build(snapshot, **options))  # type: ignore[arg-type]
    real = attachment.attach_parents

    def unshared(*args: object, **kwargs: object) -> None:
        kwargs["verdicts"] = None
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(attachment, "attach_parents", unshared)
    monkeypatch.setattr(routes, "attach_parents", unshared)
    alone = verdicts(graph.build(snapshot, **options))  # type: ignore[arg-type]
    assert shared == alone
    assert shared == {
        "a0": [("True", "Accepted", ["http", "all"])],
        "a1-invalid": [("False", "UnsupportedValue", [])],
        "a2-other-namespace": [("True", "Accepted", ["all"])],  # http: from Same
        "a3-section": [("True", "Accepted", ["all"])],
        "a4-port": [("False", "NotAllowedByListeners", [])],  # GRPCRoutes only there
        "a5-hostname": [("True", "Accepted", ["all"])],
        "a6-grpc": [("True", "Accepted", ["grpc"])],
        "a7-http": [("False", "NotAllowedByListeners", [])],
    }
