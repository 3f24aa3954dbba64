"""Gateway, ListenerSet and GatewayClass edits reattach the routes; the result equals a
full rebuild.

``graph.update`` takes graph/reattach.py's path when only those kinds changed: the
Gateways and listeners are built anew and every route keeps its resolution and is
attached again. Random sequences of edits -- listeners added, removed, renamed,
conflicting, their hostnames, ports and allowedRoutes changed, HTTPS listeners with
certificates, a Gateway of another class, a second Gateway added and removed,
ListenerSets added, changed, removed, not allowed, a GatewayClass made invalid, the
Gateway's client CA ConfigMap and listener Secret changed --
mixed with route and Service edits (graph/incremental.py's patch, which must keep
working on a reattached Graph), with HTTPRoutes, GRPCRoutes (GEP-1016 verdicts), a
TCPRoute, a TLSRoute and sometimes a BackendTLSPolicy (its ancestors are the Gateways
of the routes) present: after every step status and IR must equal what a pipeline
computes from scratch.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.graph.test_incremental_graph import _CA as CA
from tests.graph.test_incremental_graph import (
    Tree,
    _compile_counting_builds,
    new_pipeline,
    outcome,
    service,
    write,
)
from tests.graph.test_incremental_graph import _route as cross_route
from turnout import graph
from turnout.graph.backends import BackendResolver

CLASS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: turnout}
spec: {controllerName: turnout.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/another-controller}
"""

# A class of ours of its own file, sometimes with parameters (then not Accepted).
CLASS_2 = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: turnout2}}
spec: {{controllerName: turnout.dev/gateway-controller{parameters}}}
"""

# Every listener a random Gateway may have; placeholders are drawn per edit.
LISTENERS = {
    "http": "{{name: http, port: 80, protocol: HTTP{hostname}{allowed}}}",
    "plain": "{{name: plain, port: {port}, protocol: HTTP{allowed}}}",
    "twin": "{{name: twin, port: 80, protocol: HTTP{hostname}}}",  # may conflict with http
    "sel": "{{name: sel, port: 8081, protocol: HTTP, allowedRoutes: {{namespaces: "
    "{{from: Selector, selector: {{matchLabels: {{team: blue}}}}}}}}}}",
    "tcp": "{{name: tcp, port: 9000, protocol: TCP{allowed}}}",
    "tls": "{{name: tls, port: 9443, protocol: TLS, hostname: '*.example.com', "
    "tls: {{mode: Passthrough}}{allowed}}}",
    "https": "{{name: https, port: 443, protocol: HTTPS{hostname}, "
    "tls: {{certificateRefs: [{{name: {cert}}}]}}{allowed}}}",
    "kinds": "{{name: kinds, port: 8082, protocol: HTTP, allowedRoutes: "
    "{{kinds: [{{kind: GRPCRoute}}]}}}}",
}
HOSTNAMES = ["", "", ", hostname: '*.example.com'", ", hostname: a.example.com"]
ALLOWED = [
    "",
    ", allowedRoutes: {namespaces: {from: All}}",
    ", allowedRoutes: {namespaces: {from: Same}}",
]


def gateway(rng: random.Random, namespace: str, name: str) -> str:
    """A Gateway with a random subset of LISTENERS (and random settings)."""
    chosen = rng.sample(sorted(LISTENERS), rng.randint(1, 5))
    listeners = [
        LISTENERS[key].format(
            hostname=rng.choice(HOSTNAMES),
            allowed=rng.choice(ALLOWED),
            port=rng.choice([8080, 8080, 80]),
            cert=rng.choice(["cert", "cert", "missing"]),
        )
        for key in chosen
    ]
    class_name = rng.choice(["turnout"] * 8 + ["turnout2", "other"])
    allowed_listeners = (
        "  allowedListeners: {namespaces: {from: All}}\n" if rng.random() < 0.7 else ""
    )
    if rng.random() < 0.5:  # HTTPS listeners validate client certificates
        allowed_listeners += (
            "  tls: {frontend: {default: {validation: {caCertificateRefs: "
            '[{group: "", kind: ConfigMap, name: client-ca}]}}}}\n'
        )
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  gatewayClassName: {class_name}
{allowed_listeners}  listeners:
""" + "".join(f"    - {listener}\n" for listener in listeners)


def listener_set(rng: random.Random, name: str) -> str:
    """A ListenerSet in apps on Gateway default/gw, with one or two listeners."""
    listeners = rng.sample(
        [
            "{name: one, port: 80, protocol: HTTP, hostname: one.example.com}",
            "{name: two, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}",
            "{name: clash, port: 80, protocol: HTTP}",  # may conflict with the Gateway's
            "{name: tcp, port: 9100, protocol: TCP, allowedRoutes: {namespaces: {from: All}}}",
        ],
        rng.randint(1, 2),
    )
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {{name: {name}, namespace: apps, creationTimestamp: '2026-01-01T00:00:0{rng.randrange(3)}Z'}}
spec:
  parentRef: {{name: gw, namespace: default}}
  listeners: [{", ".join(listeners)}]
"""


EXTRA_ROUTES = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: on-sets, namespace: apps}
spec:
  parentRefs:
    - {kind: ListenerSet, group: gateway.networking.k8s.io, name: ls0}
    - {kind: ListenerSet, group: gateway.networking.k8s.io, name: ls1, sectionName: two}
    - {name: gw2, namespace: apps}
  rules: [{backendRefs: [{name: s1, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: both, namespace: default}
spec:
  parentRefs: [{name: gw}, {name: gw2, namespace: apps, sectionName: plain}]
  hostnames: [a.example.com]
  rules: [{backendRefs: [{name: s0, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: apps}
spec:
  parentRefs:
    - {name: gw, namespace: default, sectionName: tcp}
    - {kind: ListenerSet, group: gateway.networking.k8s.io, name: ls0}
  rules: [{backendRefs: [{name: s0, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: passthrough, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [a.example.com]
  rules: [{backendRefs: [{name: s2, port: 80}]}]
"""

POLICY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: s1-tls, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: s1}]
  validation:
    caCertificateRefs: [{group: "", kind: ConfigMap, name: backend-ca}]
    hostname: s1.example.com
"""


def config_map(name: str, valid: bool) -> str:
    """A ConfigMap in default whose ca.crt is a CA certificate, or not."""
    pem = CA.cert_pem.bytes().decode() if valid else "not a certificate"
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: default}}
data: {{ca.crt: {json.dumps(pem)}}}
"""


class GatewayTree(Tree):
    """Tree's routes, Services and Secrets, with random Gateways and ListenerSets."""

    def setup(self) -> None:
        super().setup()
        self.gateway_edit()
        write(self.root / "00-class.yaml", CLASS_2.format(parameters=""))
        write(self.root / "extra-routes.yaml", EXTRA_ROUTES)
        if self.rng.random() < 0.5:
            write(self.root / "policy.yaml", POLICY)
        for name in ("client-ca", "backend-ca"):
            write(self.root / f"cm-{name}.yaml", config_map(name, valid=True))
        for _ in range(3):
            self.grpc_edit()

    def has_policy(self) -> bool:
        return (self.root / "policy.yaml").exists()

    def gateway_edit(self) -> set[Path]:
        path = self.root / "00-gateway.yaml"  # Tree's, which holds its GatewayClass too
        write(path, CLASS + "---\n" + gateway(self.rng, "default", "gw"))
        return {path}

    def second_gateway_edit(self) -> set[Path]:
        path = self.root / "gw2.yaml"
        if path.exists() and self.rng.random() < 0.3:
            path.unlink()
        else:
            write(path, gateway(self.rng, "apps", "gw2"))
        return {path}

    def listener_set_edit(self) -> set[Path]:
        name = self.rng.choice(["ls0", "ls1"])
        path = self.root / f"{name}.yaml"
        if path.exists() and self.rng.random() < 0.3:
            path.unlink()
        else:
            write(path, listener_set(self.rng, name))
        return {path}

    def class_edit(self) -> set[Path]:
        path = self.root / "00-class.yaml"
        if path.exists() and self.rng.random() < 0.25:
            path.unlink()
        else:
            parameters = self.rng.choice(
                ["", ", parametersRef: {group: example.com, kind: Config, name: c}"]
            )
            write(path, CLASS_2.format(parameters=parameters))
        return {path}

    def config_map_edit(self) -> set[Path]:
        """The Gateway's client CA or the BackendTLSPolicy's CA: valid, invalid, gone."""
        path = self.root / f"cm-{self.rng.choice(['client-ca', 'backend-ca'])}.yaml"
        if path.exists() and self.rng.random() < 0.3:
            path.unlink()
        else:
            write(path, config_map(path.stem[3:], valid=self.rng.random() < 0.6))
        return {path}

    def listener_step(self) -> set[Path]:
        """Mostly an edit graph/reattach.py follows; sometimes one the patch does."""
        roll = self.rng.random()
        if roll < 0.45:
            return self.gateway_edit()
        if roll < 0.6:
            return self.listener_set_edit()
        if roll < 0.7:
            return self.second_gateway_edit()
        if roll < 0.74:
            return self.class_edit()
        if roll < 0.78:
            return self.config_map_edit()
        if roll < 0.81:
            return self.secret_edit()
        if roll < 0.87:
            return self.modify_route()
        if roll < 0.92:
            return self.grpc_edit()
        return self._service_edit()


@pytest.mark.parametrize("seed", range(10))
def test_listener_edits_equal_a_full_rebuild(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    tree = GatewayTree(tmp_path, rng)
    tree.setup()
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    builds: list[object] = []
    real = graph._build

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(graph, "_build", counting)
    reattached = 0
    for _ in range(50):
        changed = tree.listener_step()
        basis = incremental.graph_basis
        del builds[:]
        got = outcome(incremental, {p.absolute() for p in changed}, fresh=False)
        after = incremental.graph_basis
        assert basis is not None and after is not None
        listener_kinds = all(
            p.name.startswith(("00-", "gw2", "ls", "cm-", "secret")) for p in changed
        )
        if any(p.name == "cm-backend-ca.yaml" for p in changed) and tree.has_policy():
            assert builds  # the policy reads it: routes' backends may resolve otherwise
        if not builds and after.graph.gateways is not basis.graph.gateways:
            assert listener_kinds
            reattached += 1
        monkeypatch.setattr(graph, "_build", real)
        assert got == outcome(reference, None, fresh=True)
        monkeypatch.setattr(graph, "_build", counting)
    assert reattached >= 20  # the reattach path was taken, not only full builds


def test_a_listener_added_and_removed_reattaches_without_resolving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bench's Gateway change: a listener added then removed. No full build, no
    rule resolved again (the resolver is never asked), the same rule objects in the new
    nodes; status and IR equal a full rebuild."""
    tree = GatewayTree(tmp_path, random.Random(11))
    tree.setup()
    path = tmp_path / "00-gateway.yaml"
    text = CLASS + "---\n" + gateway(random.Random(2), "default", "gw")
    write(path, text)
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    resolved: list[object] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        resolved.append(args)
        return real_resolve(*args, **kwargs)

    real_resolve = BackendResolver.resolve
    extra = "    - {name: extra, port: 8090, protocol: HTTP, hostname: x.example.com}\n"
    for listeners in (text + extra, text, text + extra):
        before = incremental.graph_basis
        assert before is not None
        write(path, listeners)
        with monkeypatch.context() as m:
            m.setattr(graph, "_build", lambda *a, **k: pytest.fail("full build"))
            m.setattr(BackendResolver, "resolve", record)
            got = outcome(incremental, {path.absolute()}, fresh=False)
        assert got == outcome(reference, None, fresh=True)
        after = incremental.graph_basis
        assert after is not None and after.graph.gateways is not before.graph.gateways
        assert after.graph.routes.keys() == before.graph.routes.keys()
        for key, node in after.graph.routes.items():
            old = before.graph.routes[key]
            assert node is not old and node.obj is old.obj
            assert all(a is b for a, b in zip(node.rules, old.rules, strict=True))
    assert resolved == []
    assert after is not None
    names = [ln.name for ln in after.graph.gateways[("default", "gw")].listeners]
    assert names[-1] == "extra"
    with monkeypatch.context() as m:  # the hook sees what a build resolves
        m.setattr(BackendResolver, "resolve", record)
        outcome(reference, None, fresh=True)
    assert resolved


def test_cross_serving_verdicts_follow_a_reattach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GEP-1016: an HTTPRoute (oldest) takes a hostname from a GRPCRoute, which takes
    nothing from a younger HTTPRoute. Patches decide conflicts again from what they
    found at the first patch (graph/incremental.py ``Basis.cross``); after a reattach
    that is about listener nodes of the replaced Graph: a route removed after it must
    still hand its hostname to the route that lost it."""
    gateway_file = tmp_path / "00-gateway.yaml"
    plain = CLASS + "---\n" + gateway(random.Random(0), "default", "gw")
    plain = plain[: plain.index("  listeners:")] + "  listeners:\n"
    http = "    - {name: http, port: 80, protocol: HTTP, hostname: '*.example.com'}\n"
    write(gateway_file, plain + http)
    write(tmp_path / "svc.yaml", service("default", "s0", "10.0.0.1", 80))
    a, b, c = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    write(a, cross_route("HTTPRoute", "a", "1", "a.example.com"))
    write(b, cross_route("GRPCRoute", "b", "2", "*.example.com"))
    write(c, cross_route("HTTPRoute", "c", "3", "b.example.com"))
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    extra = "    - {name: extra, port: 8090, protocol: HTTP}\n"
    steps: list[tuple[Path, str | None]] = [
        (c, cross_route("HTTPRoute", "c", "3", "c.example.com")),  # patched
        (gateway_file, plain + http + extra),  # reattached
        (a, None),  # patched: b wins the listener, c loses it to b
        (gateway_file, plain + http),  # reattached
        (a, cross_route("HTTPRoute", "a", "1", "a.example.com")),  # patched: b loses again
    ]
    for path, text in steps:
        if text is None:
            path.unlink()
        else:
            write(path, text)
        got, builds = _compile_counting_builds(monkeypatch, incremental, {path})
        assert got == outcome(reference, None, fresh=True)
        assert builds == 0  # patched or reattached
    assert incremental.graph_basis is not None
    grpc = incremental.graph_basis.graph.grpc_routes[("default", "b")]
    assert [listener.name for parent in grpc.parents for listener, _ in parent.listeners] == []
