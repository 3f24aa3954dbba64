"""A reload of only the changed files, patching the last Graph, equals a full rebuild.

``Pipeline.compile(changed_paths)`` reads only the files the watcher reported
(sources/files.py ``FileSource._patch``) and, when only routes, Services,
EndpointSlices, Secrets, ReferenceGrants and Namespaces changed, patches the
previous Graph (graph/incremental.py).
Random sequences of edits (HTTPRoutes, Services, Gateways, ReferenceGrants, GRPCRoutes
and TCPRoutes added, modified, rewritten unchanged, renamed, removed, broken,
duplicated, moved into new directories; ReferenceGrants from routes of either kind
and from the Gateway added, changed, removed; Namespaces relabelled under a listener
that selects namespaces by label; GRPCRoutes and HTTPRoutes of random ages
sharing hostnames on listeners, so that GEP-1016 verdicts change while patching; the
HTTPS listener's Secret rotated to another key pair, an invalid one, removed) go
through that path,
and after every step status and IR must equal what a pipeline computes from scratch: a
full listing and stat of every file, a full graph build with empty caches.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import trustme

from turnout import graph, ir
from turnout.graph.memo import RuleMemo
from turnout.ir.reuse import BuildCache
from turnout.runtime import Pipeline, RunOptions
from turnout.sources.files import FileSource
from turnout.status.compute import DataPlaneFeedback, StatusClock

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: turnout}}
spec: {{controllerName: turnout.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: turnout
  listeners:
    - {{name: http, port: 80, protocol: HTTP, hostname: "{hostname}",
       allowedRoutes: {{namespaces: {{from: All}}}}}}
    - {{name: plain, port: 8080, protocol: HTTP}}
    - {{name: tcp, port: 9000, protocol: TCP}}
    - {{name: https, port: 443, protocol: HTTPS, hostname: "*.example.com",
       tls: {{certificateRefs: [{{name: cert}}]}}, allowedRoutes: {{namespaces: {{from: All}}}}}}
    - {{name: sel, port: 8081, protocol: HTTP,
       allowedRoutes: {{namespaces: {{from: Selector, selector: {{matchLabels: {{team: blue}}}}}}}}}}
    - {{name: https-apps, port: 8443, protocol: HTTPS, hostname: "*.example.com",
       tls: {{certificateRefs: [{{name: cert, namespace: apps}}]}},
       allowedRoutes: {{namespaces: {{from: All}}}}}}
"""

HOSTS = ["a.example.com", "b.example.com", "*.example.com", "other.test"]
NAMESPACES = ["default", "apps"]
SERVICES = ["s0", "s1", "s2"]


def service(namespace: str, name: str, address: str, port: int, app_protocol: str = "") -> str:
    extra = f", appProtocol: {app_protocol}" if app_protocol else ""
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  ports: [{{name: http, port: {port}{extra}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: 9000}}]
endpoints: [{{addresses: ["{address}"]}}]
"""


def http_route(rng: random.Random, namespace: str, name: str) -> str:
    hostnames = rng.sample(HOSTS, rng.randint(0, 2))
    section = rng.choice(
        ["", ", sectionName: http", ", sectionName: plain", ", port: 8080", ", sectionName: sel"]
    )
    rules = []
    for r in range(rng.randint(1, 3)):
        backend_ns = rng.choice([namespace, namespace, "default", "apps"])
        backend = rng.choice([*SERVICES, "missing"])
        port = rng.choice([80, 80, 81])
        header = ", headers: [{name: x-t, value: v}]" if rng.random() < 0.3 else ""
        mirror = ""
        if rng.random() < 0.2:
            target = rng.choice(SERVICES)
            mirror = (  # a key of the rule: on its own line
                "\n      filters: [{type: RequestMirror, requestMirror: "
                f"{{backendRef: {{name: {target}, port: 80}}}}}}]"
            )
        rules.append(
            f"    - matches: [{{path: {{type: PathPrefix, value: /{name}/{r}}}{header}}}]\n"
            f"      backendRefs: [{{name: {backend}, namespace: {backend_ns}, port: {port}}}]"
            f"{mirror}"
        )
    if rng.random() < 0.1:  # a rule turnout cannot serve: dropped, PartiallyInvalid
        rules.append(
            "    - filters: [{type: ExtensionRef, extensionRef: {group: x.io, kind: F, name: f}}]"
        )
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}{created(rng)}}}
spec:
  parentRefs: [{{name: gw, namespace: default{section}}}]
  hostnames: {hostnames}
  rules:
{chr(10).join(rules)}
"""


def created(rng: random.Random) -> str:
    """Sometimes a creationTimestamp of its own: GEP-1016 conflicts go to the oldest
    route, so ages decide which of an HTTPRoute and a GRPCRoute keeps a hostname."""
    if rng.random() < 0.5:
        return ""
    return f", creationTimestamp: '2026-01-01T00:00:0{rng.randrange(4)}Z'"


def grpc_route(rng: random.Random, namespace: str, name: str) -> str:
    """A GRPCRoute whose hostnames often meet the HTTPRoutes' on a listener."""
    hostnames = rng.sample(HOSTS, rng.randint(0, 2))
    parents = rng.choice(
        [
            "[{name: gw, namespace: default, sectionName: http}]",
            "[{name: gw, namespace: default}]",
            "[{name: gw, namespace: default, sectionName: http}, "
            "{name: gw, namespace: default, port: 8080}]",
        ]
    )
    backend = rng.choice([*SERVICES, "missing"])
    backend_ns = rng.choice([namespace, namespace, *NAMESPACES])
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: {name}, namespace: {namespace}{created(rng)}}}
spec:
  parentRefs: {parents}
  hostnames: {hostnames}
  rules: [{{backendRefs: [{{name: {backend}, namespace: {backend_ns}, port: 80}}]}}]
"""


def tcp_route(name: str, backend: str) -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: tcp}}]
  rules: [{{backendRefs: [{{name: {backend}, port: 80}}]}}]
"""


_CA = trustme.CA()
# Key pairs a certificate rotation goes through (cert-manager renewing a Secret).
_PAIRS = [_CA.issue_cert(f"v{i}.example.com", "*.example.com") for i in range(3)]


def secret(version: int | None, namespace: str = "default") -> str:
    """The listener's Secret ``cert``: key pair ``version``, or (None) an invalid one."""
    if version is None:
        chain, key = "not a certificate", "not a key"
    else:
        chain = _PAIRS[version].cert_chain_pems[0].bytes().decode()
        key = _PAIRS[version].private_key_pem.bytes().decode()
    return f"""\
apiVersion: v1
kind: Secret
metadata: {{name: cert, namespace: {namespace}}}
type: kubernetes.io/tls
stringData:
  tls.crt: {json.dumps(chain)}
  tls.key: {json.dumps(key)}
"""


def grant(namespace: str, froms: list[tuple[str, str]], to: list[str]) -> str:
    """ReferenceGrant ``refs`` in ``namespace``: from (kind, namespace), to each
    ``Kind`` or ``Kind/name``."""
    from_ = ", ".join(
        f"{{group: gateway.networking.k8s.io, kind: {kind}, namespace: {ns}}}" for kind, ns in froms
    )
    targets = []
    for target in to:
        kind, _, name = target.partition("/")
        targets.append(f'{{group: "", kind: {kind}' + (f", name: {name}}}" if name else "}"))
    return f"""\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: refs, namespace: {namespace}}}
spec:
  from: [{from_}]
  to: [{", ".join(targets)}]
"""


def namespace(name: str, team: str | None) -> str:
    labels = f", labels: {{team: {team}}}" if team else ""
    return f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}{labels}}}\n"


def write(path: Path, text: str) -> None:
    """Atomically (write, rename), as editors and the bench do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


FIXED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def new_pipeline(root: Path) -> Pipeline:
    pipeline = Pipeline(RunOptions(paths=(root,)), clock=StatusClock(lambda: "T"))
    pipeline.source = FileSource([root], clock=lambda: FIXED)
    pipeline.session_key = "k"
    return pipeline


def outcome(pipeline: Pipeline, changed: set[Path] | None, *, fresh: bool) -> Any:
    """Status items (uids left out: each source draws its own) and IR, as JSON."""
    if fresh:  # from scratch: no graph to patch, empty caches
        pipeline.graph_basis = None
        pipeline.rule_memo = RuleMemo()
        pipeline.ir_cache = BuildCache()
    loaded, built, config = pipeline.compile(changed)
    items = pipeline.status(loaded, built, DataPlaneFeedback(applied=True))
    for item in items:
        item["metadata"].pop("uid", None)
    return items, ir.to_json(config), sorted(map(str, loaded.errors)), type(built)


class Tree:
    """The manifests directory and the random edits applied to it."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.routes: dict[str, Path] = {}  # route name -> its file
        self.grpc: dict[str, Path] = {}  # GRPCRoute name -> its file

    def setup(self) -> None:
        write(self.root / "00-gateway.yaml", GATEWAY.format(hostname="*.example.com"))
        for ns in NAMESPACES:
            for i, name in enumerate(SERVICES):
                write(self.root / f"svc-{ns}-{name}.yaml", service(ns, name, f"10.0.0.{i}", 80))
        for _ in range(6):
            self.add_route()
        for _ in range(self.rng.randrange(4)):
            self.grpc_edit()
        write(self.root / "secret-cert.yaml", secret(0))
        write(self.root / "secret-apps-cert.yaml", secret(1, "apps"))

    def secret_edit(self) -> set[Path]:
        """The listener certificate rotated: another key pair, an invalid one, gone."""
        path = self.root / "secret-cert.yaml"
        state = self.rng.choice([0, 1, 2, None, "missing"])
        if state == "missing":
            if path.exists():
                path.unlink()
        else:
            assert state is None or isinstance(state, int)
            write(path, secret(state))
        return {path}

    def grant_edit(self) -> set[Path]:
        """The ReferenceGrant of a namespace added, changed or removed: from routes of
        either kind in the other namespace, from the Gateway (to the https-apps
        listener's Secret), to every Service or one of them."""
        rng = self.rng
        ns = rng.choice(NAMESPACES)
        other = "apps" if ns == "default" else "default"
        path = self.root / f"grant-{ns}.yaml"
        if path.exists() and rng.random() < 0.3:
            path.unlink()
            return {path}
        kinds = rng.sample(["HTTPRoute", "GRPCRoute", "Gateway", "TCPRoute"], rng.randint(1, 3))
        froms = [(kind, other) for kind in kinds]
        to = rng.sample(["Service", "Service/s1", "Secret", "Secret/cert", "Secret/x"], 2)
        write(path, grant(ns, froms, to))
        return {path}

    def namespace_edit(self) -> set[Path]:
        """A Namespace's labels changed (the sel listener selects team: blue), or the
        Namespace declared or removed."""
        rng = self.rng
        ns = rng.choice(NAMESPACES)
        path = self.root / f"ns-{ns}.yaml"
        if path.exists() and rng.random() < 0.25:
            path.unlink()
        else:
            write(path, namespace(ns, rng.choice(["blue", "blue", "red", None])))
        return {path}

    def grpc_edit(self) -> set[Path]:
        """A GRPCRoute added, modified, rewritten unchanged or removed."""
        rng = self.rng
        name = f"g{rng.randrange(5)}"
        path = self.grpc.get(name)
        if path is not None and rng.random() < 0.3:
            path.unlink()
            del self.grpc[name]
            return {path}
        if path is not None and rng.random() < 0.15:
            write(path, path.read_text())
            return {path}
        path = path or self.root / f"grpc-{name}.yaml"
        write(path, grpc_route(rng, rng.choice(NAMESPACES), name))
        self.grpc[name] = path
        return {path}

    def add_route(self) -> set[Path]:
        name = f"r{self.rng.randrange(1000)}"
        if name in self.routes:
            return self.modify_route(name)
        ns = self.rng.choice(NAMESPACES)
        sub = self.rng.choice(["", "", "team/"])
        path = self.root / f"{sub}route-{name}.yaml"
        write(path, http_route(self.rng, ns, name))
        self.routes[name] = path
        return {path}

    def modify_route(self, name: str | None = None) -> set[Path]:
        name = name or self.rng.choice(sorted(self.routes))
        path = self.routes[name]
        ns = "apps" if "namespace: apps" in path.read_text() else "default"
        write(path, http_route(self.rng, ns, name))
        return {path}

    def step(self) -> set[Path]:
        """One random edit; the paths a watcher would report."""
        rng = self.rng
        if rng.random() < 0.2:
            return self.grpc_edit()
        if rng.random() < 0.12:
            return self.secret_edit()
        if rng.random() < 0.08:
            return self.namespace_edit()
        if rng.random() < 0.08:
            return self.grant_edit()
        roll = rng.random()
        names = sorted(self.routes)
        if roll < 0.25 or not names:
            return self.add_route()
        if roll < 0.5:
            return self.modify_route()
        path = self.routes[rng.choice(names)]
        if roll < 0.55:  # rewritten without a change
            write(path, path.read_text())
            return {path}
        if roll < 0.62:
            name = next(n for n, p in self.routes.items() if p == path)
            del self.routes[name]
            path.unlink()
            return {path}
        if roll < 0.66:  # renamed
            name = next(n for n, p in self.routes.items() if p == path)
            target = path.with_name(f"renamed-{path.name}")
            os.replace(path, target)
            self.routes[name] = target
            return {path, target}
        if roll < 0.70:  # broken, then its last good version keeps serving
            write(path, path.read_text() + "\n  bad: [unclosed\n")
            return {path}
        if roll < 0.74:  # the same route defined in a second file
            copy = path.with_name(f"zz-copy-{path.name}")
            write(copy, path.read_text())
            return {copy}
        if roll < 0.78:
            return self._service_edit()
        if roll < 0.81:
            hostname = rng.choice(["*.example.com", "a.example.com"])
            gateway = self.root / "00-gateway.yaml"
            write(gateway, GATEWAY.format(hostname=hostname))
            return {gateway}
        if roll < 0.85:
            return self.grant_edit()
        if roll < 0.88:  # one GRPCRoute with an HTTPRoute, in one batch
            return self.grpc_edit() | self.modify_route()
        if roll < 0.91:
            tcp = self.root / "tcp.yaml"
            write(tcp, tcp_route("t", rng.choice([*SERVICES, "missing"])))
            return {tcp}
        if roll < 0.94:  # a new directory, then removed with everything in it
            directory = self.root / "extra"
            if directory.exists():
                shutil.rmtree(directory)
                self.routes = {n: p for n, p in self.routes.items() if directory not in p.parents}
            else:
                name = f"x{rng.randrange(1000)}"
                self.routes.pop(name, None)
                path = directory / f"route-{name}.yaml"
                write(path, http_route(rng, "default", name))
                self.routes[name] = path
            return {directory}
        if roll < 0.97:  # not a manifest: never read
            junk = self.root / "notes.txt"
            junk.write_text(str(rng.random()))
            return {junk}
        # two routes edited in one batch
        return self.modify_route() | self.add_route()

    def _service_edit(self) -> set[Path]:
        ns, name = self.rng.choice(NAMESPACES), self.rng.choice(SERVICES)
        path = self.root / f"svc-{ns}-{name}.yaml"
        if path.exists() and self.rng.random() < 0.3:
            path.unlink()
        else:
            address = f"10.1.{self.rng.randrange(4)}.1"
            port = self.rng.choice([80, 80, 81])
            app_protocol = self.rng.choice(["", "", "kubernetes.io/h2c"])
            write(path, service(ns, name, address, port, app_protocol))
        return {path}


@pytest.mark.parametrize("seed", range(12))
def test_incremental_reloads_equal_a_full_rebuild(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    tree = Tree(tmp_path, rng)
    tree.setup()
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    patched = patched_with_grpc = patched_references = 0
    for _ in range(60):
        changed = {p.absolute() for p in tree.step()}
        basis = incremental.graph_basis
        got = outcome(incremental, changed, fresh=False)
        assert got == outcome(reference, None, fresh=True)
        after = incremental.graph_basis
        assert after is not None
        if basis is not None and after.graph.gateways is basis.graph.gateways:
            patched += 1
            patched_with_grpc += bool(after.graph.grpc_routes or basis.snapshot.grpc_routes)
            patched_references += any(p.name.startswith(("grant-", "ns-")) for p in changed)
    assert patched > 0  # the patch path was taken, not only full builds
    assert patched_references > 0  # also for ReferenceGrant and Namespace edits
    assert patched_with_grpc > 0  # also with GRPCRoutes present (GEP-1016 decided again)


def test_only_the_changed_route_is_resolved_again(tmp_path: Path) -> None:
    rng = random.Random(7)
    tree = Tree(tmp_path, rng)
    tree.setup()
    pipeline = new_pipeline(tmp_path)
    _, first, _ = pipeline.compile()
    name = sorted(tree.routes)[0]
    changed = tree.modify_route(name)
    loaded, second, _ = pipeline.compile({p.absolute() for p in changed})
    assert loaded.changed is not None and {key[0] for key in loaded.changed} == {"HTTPRoute"}
    assert second.gateways is first.gateways  # patched, not rebuilt
    unchanged = [key for key in second.routes if key[1] != name]
    assert unchanged and all(second.routes[key] is first.routes[key] for key in unchanged)


def test_endpoint_and_service_changes_patch_unless_an_l4_route_uses_the_service(
    tmp_path: Path,
) -> None:
    """An EndpointSlice change only refreshes its Service's clusters; a Service change
    re-resolves the HTTPRoutes that use it; a Service that a TCPRoute uses is not
    tracked (yet): the full build."""
    tree = Tree(tmp_path, random.Random(3))
    tree.setup()
    write(tmp_path / "web.yaml", http_route(random.Random(1), "default", "web"))
    write(tmp_path / "web.yaml", (tmp_path / "web.yaml").read_text().replace("missing", "s1"))
    write(tmp_path / "to-s0.yaml", tcp_route("t", "s0"))
    pipeline = new_pipeline(tmp_path)
    _, first, _ = pipeline.compile()
    s0, s1 = tmp_path / "svc-default-s0.yaml", tmp_path / "svc-default-s1.yaml"
    write(s0, service("default", "s0", "10.9.9.9", 80))  # the EndpointSlice only
    loaded, second, config = pipeline.compile({s0.absolute()})
    assert loaded.changed == {("EndpointSlice", "default", "s0-1")}
    assert second.gateways is first.gateways  # patched
    assert config.clusters["default/s0:80"].endpoints[0].address == "10.9.9.9"
    write(s1, service("default", "s1", "10.0.0.1", 81))  # a Service's port
    loaded, third, config = pipeline.compile({s1.absolute()})
    assert loaded.changed == {("Service", "default", "s1")}
    assert third.gateways is second.gateways  # patched: no TCPRoute uses s1
    assert "default/s1:80" not in config.clusters
    write(s0, service("default", "s0", "10.9.9.9", 81))  # the TCPRoute's Service
    _, fourth, config = pipeline.compile({s0.absolute()})
    assert fourth.gateways is not third.gateways
    assert "default/s0:80" not in config.clusters


def test_graph_update_without_changes_known_builds(tmp_path: Path) -> None:
    Tree(tmp_path, random.Random(1)).setup()
    loaded = FileSource([tmp_path]).load()
    built, basis = graph.update(
        loaded.snapshot,
        None,
        None,
        controller_name="turnout.dev/gateway-controller",
        addresses={("default", "gw"): "127.0.0.1"},
    )
    assert basis.graph is built and basis.snapshot is loaded.snapshot


def test_a_service_protocol_change_is_patched_like_a_rebuild(tmp_path: Path) -> None:
    """appProtocol h2c -> none keeps the cluster's name and changes its protocol."""
    tree = Tree(tmp_path, random.Random(4))
    tree.setup()
    s1 = tmp_path / "svc-default-s1.yaml"
    write(s1, service("default", "s1", "10.0.0.1", 80, "kubernetes.io/h2c"))
    route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
    route += "metadata: {name: web, namespace: default}\n"
    route += "spec: {parentRefs: [{name: gw}], rules: [{backendRefs: [{name: s1, port: 80}]}]}\n"
    write(tmp_path / "web.yaml", route)
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    outcome(incremental, None, fresh=False)
    outcome(reference, None, fresh=True)
    for app_protocol in ("", "kubernetes.io/h2c", ""):
        write(s1, service("default", "s1", "10.0.0.1", 80, app_protocol))
        before = incremental.graph_basis
        got = outcome(incremental, {s1.absolute()}, fresh=False)
        assert got == outcome(reference, None, fresh=True)
        assert before is not None and incremental.graph_basis is not None
        assert incremental.graph_basis.graph.gateways is before.graph.gateways  # patched
        protocol = incremental.graph_basis.graph.cluster_protocols.get("default/s1:80")
        assert protocol == ("h2c" if app_protocol else None)


def _route(kind: str, name: str, created: str, hostname: str) -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: {kind}
metadata: {{name: {name}, namespace: default, creationTimestamp: '2026-01-01T00:00:0{created}Z'}}
spec:
  parentRefs: [{{name: gw, sectionName: http}}]
  hostnames: ["{hostname}"]
  rules: [{{backendRefs: [{{name: s0, port: 80}}]}}]
"""


def test_grpc_routes_are_patched_and_conflicts_cascade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GRPCRoutes present: HTTPRoute and GRPCRoute changes patch the Graph (graph._build
    is not called), and a GEP-1016 verdict that changes passes on to the routes that
    lost or won because of it, exactly as a full build decides."""
    write(tmp_path / "00-gateway.yaml", GATEWAY.format(hostname="*.example.com"))
    write(tmp_path / "svc.yaml", service("default", "s0", "10.0.0.1", 80))
    a, b, c = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    # a (oldest) keeps a.example.com; b shares it (wildcard) and loses the listener; c
    # shares b.example.com with b only, and b claims nothing: c keeps it.
    write(a, _route("HTTPRoute", "a", "1", "a.example.com"))
    write(b, _route("GRPCRoute", "b", "2", "*.example.com"))
    write(c, _route("HTTPRoute", "c", "3", "b.example.com"))
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    builds: list[object] = []
    real = graph._build

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(args)
        return real(*args, **kwargs)

    def listeners_of(kind: str, name: str) -> list[str]:
        assert incremental.graph_basis is not None
        built = incremental.graph_basis.graph
        node = (built.routes if kind == "HTTPRoute" else built.grpc_routes)[("default", name)]
        return [listener.name for parent in node.parents for listener, _ in parent.listeners]

    def step(path: Path, text: str | None) -> None:
        if text is None:
            path.unlink()
        else:
            write(path, text)
        monkeypatch.setattr(graph, "_build", counting)
        got = outcome(incremental, {path.absolute()}, fresh=False)
        monkeypatch.setattr(graph, "_build", real)
        assert got == outcome(reference, None, fresh=True)
        assert builds == []  # patched

    assert listeners_of("GRPCRoute", "b") == [] and listeners_of("HTTPRoute", "c") == ["http"]
    step(a, None)  # b wins the listener now, and c loses it to b
    assert listeners_of("GRPCRoute", "b") == ["http"] and listeners_of("HTTPRoute", "c") == []
    step(a, _route("HTTPRoute", "a", "1", "a.example.com"))  # back as at first
    assert listeners_of("GRPCRoute", "b") == [] and listeners_of("HTTPRoute", "c") == ["http"]
    step(b, _route("GRPCRoute", "b", "2", "x.example.com"))  # no longer shares a hostname
    assert listeners_of("GRPCRoute", "b") == ["http"] and listeners_of("HTTPRoute", "c") == ["http"]
    step(c, _route("HTTPRoute", "c", "0", "x.example.com"))  # older than b, same hostname
    assert listeners_of("GRPCRoute", "b") == [] and listeners_of("HTTPRoute", "c") == ["http"]
    step(tmp_path / "d.yaml", _route("GRPCRoute", "d", "0", "y.example.com"))  # added
    assert listeners_of("GRPCRoute", "d") == ["http"]
    step(b, None)  # removed
    step(tmp_path / "d.yaml", None)  # the last GRPCRoute removed


def _compile_counting_builds(
    monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline, changed: set[Path]
) -> tuple[Any, int]:
    """``outcome`` of a reload, and how many times it called the full ``graph._build``."""
    builds: list[object] = []
    real = graph._build

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(graph, "_build", counting)
    try:
        got = outcome(pipeline, {path.absolute() for path in changed}, fresh=False)
    finally:
        monkeypatch.setattr(graph, "_build", real)
    return got, len(builds)


def test_certificate_rotation_patches_only_the_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listener's Secret rotated (another key pair, an invalid one, gone, back): the
    Graph is patched (no full build), the listener serves the new pair or is not
    programmed, and status and IR equal a full rebuild at every step."""
    tree = Tree(tmp_path, random.Random(5))
    tree.setup()
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    path = tmp_path / "secret-cert.yaml"
    for version in (1, 2, None, "missing", 0):
        if version == "missing":
            path.unlink()
        else:
            assert version is None or isinstance(version, int)
            write(path, secret(version))
        got, builds = _compile_counting_builds(monkeypatch, incremental, {path})
        assert got == outcome(reference, None, fresh=True)
        assert builds == 0  # patched
        assert incremental.graph_basis is not None
        gateway = incremental.graph_basis.graph.gateways[("default", "gw")]
        https = next(listener for listener in gateway.listeners if listener.name == "https")
        if isinstance(version, int):
            pem = _PAIRS[version].cert_chain_pems[0].bytes()
            assert [cert.cert_chain_pem.encode() for cert in https.certificates] == [pem]
            assert https.not_programmable is None
        else:
            assert https.certificates == [] and https.not_programmable is not None


def test_a_secret_the_gateway_tls_reads_is_reattached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same Secret also the Gateway's backend client certificate (spec.tls, which
    graph/rotation.py does not follow): not the patch, the Gateways are rebuilt and the
    routes reattached (graph/reattach.py), with the same result as a full build."""
    tree = Tree(tmp_path, random.Random(5))
    tree.setup()
    gateway = tmp_path / "00-gateway.yaml"
    text = GATEWAY.format(hostname="*.example.com")
    text = text.replace(
        "  listeners:\n", "  tls: {backend: {clientCertificateRef: {name: cert}}}\n  listeners:\n"
    )
    write(gateway, text)
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    assert incremental.graph_basis is not None
    assert incremental.graph_basis.snapshot.gateways[("default", "gw")].spec.tls is not None
    path = tmp_path / "secret-cert.yaml"
    write(path, secret(1))
    before = incremental.graph_basis
    got, builds = _compile_counting_builds(monkeypatch, incremental, {path})
    assert got == outcome(reference, None, fresh=True)
    assert builds == 0
    assert incremental.graph_basis.graph.gateways is not before.graph.gateways  # not patched


def _web_in_apps(section: str) -> str:
    """HTTPRoute apps/web: to default/s1 (a reference a grant in default must permit)."""
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: apps}}
spec:
  parentRefs: [{{name: gw, namespace: default{section}}}]
  rules: [{{backendRefs: [{{name: s1, namespace: default, port: 80}}]}}]
"""


def _resolved_refs(pipeline: Pipeline) -> str | None:
    assert pipeline.graph_basis is not None
    node = pipeline.graph_basis.graph.routes[("apps", "web")]
    return next(cond.reason for cond in node.common_conditions if cond.type == "ResolvedRefs")


def test_reference_grant_changes_are_patched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grant added, narrowed, removed: the route crossing into its namespace is
    resolved again, and the listener whose certificateRef crosses is refreshed, without
    the full build; status and IR equal a full rebuild at every step."""
    Tree(tmp_path, random.Random(6)).setup()
    write(tmp_path / "web.yaml", _web_in_apps(", sectionName: http"))
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    assert _resolved_refs(incremental) == "RefNotPermitted"
    in_default, in_apps = tmp_path / "grant-default.yaml", tmp_path / "grant-apps.yaml"
    http, grpc, gateway = [("HTTPRoute", "apps")], [("GRPCRoute", "apps")], [("Gateway", "default")]
    steps: list[tuple[Path, str | None, str, bool]] = [  # route's reason, listener served
        (in_default, grant("default", http, ["Service"]), "ResolvedRefs", False),
        (in_default, grant("default", grpc, ["Service"]), "RefNotPermitted", False),
        (in_default, grant("default", http, ["Service/s1"]), "ResolvedRefs", False),
        (in_apps, grant("apps", gateway, ["Secret/cert"]), "ResolvedRefs", True),
        (in_default, None, "RefNotPermitted", True),
        (in_apps, grant("apps", gateway, ["Secret/other"]), "RefNotPermitted", False),
        (in_apps, grant("apps", gateway, ["Secret"]), "RefNotPermitted", True),
        (in_apps, None, "RefNotPermitted", False),
    ]
    for path, text, reason, served in steps:
        if text is None:
            path.unlink()
        else:
            write(path, text)
        got, builds = _compile_counting_builds(monkeypatch, incremental, {path})
        assert got == outcome(reference, None, fresh=True)
        assert builds == 0  # patched
        assert _resolved_refs(incremental) == reason
        assert incremental.graph_basis is not None
        gateway = incremental.graph_basis.graph.gateways[("default", "gw")]
        https = next(listener for listener in gateway.listeners if listener.name == "https-apps")
        assert bool(https.certificates) == served


def test_namespace_label_changes_are_patched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener sel admits namespaces labelled team: blue: relabelling (or
    removing) the route's Namespace attaches and detaches it without the full build."""
    Tree(tmp_path, random.Random(6)).setup()
    write(tmp_path / "web.yaml", _web_in_apps(", sectionName: sel"))
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    path = tmp_path / "ns-apps.yaml"
    for team in ("blue", "red", "blue", None, "blue", "gone"):
        if team == "gone":
            path.unlink()
        else:
            write(path, namespace("apps", team))
        got, builds = _compile_counting_builds(monkeypatch, incremental, {path})
        assert got == outcome(reference, None, fresh=True)
        assert builds == 0  # patched
        assert incremental.graph_basis is not None
        built = incremental.graph_basis.graph
        sel = next(ln for ln in built.gateways[("default", "gw")].listeners if ln.name == "sel")
        attached = [node.name for node, _ in sel.routes]
        assert ("web" in attached) == (team == "blue")
        assert sel.attached_routes == len(attached)


def test_a_grant_an_l4_route_crosses_takes_the_full_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TCPRoute in apps uses default/s0: a grant in default from TCPRoutes of apps
    concerns it, and L4 routes are not patched: the full build, with the same result;
    a grant it does not concern (from HTTPRoutes) is still patched."""
    Tree(tmp_path, random.Random(6)).setup()
    tcp = tcp_route("t", "s0").replace("namespace: default", "namespace: apps")
    tcp = tcp.replace("{name: s0", "{name: s0, namespace: default")
    write(tmp_path / "tcp.yaml", tcp.replace("{name: gw", "{name: gw, namespace: default"))
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    assert incremental.graph_basis is not None
    assert incremental.graph_basis.graph.l4_routes  # the TCPRoute is in the Graph
    path = tmp_path / "grant-default.yaml"
    for kinds, expected in ((["HTTPRoute"], 0), (["TCPRoute"], 1), (["HTTPRoute"], 1)):
        write(path, grant("default", [(kind, "apps") for kind in kinds], ["Service"]))
        got, builds = _compile_counting_builds(monkeypatch, incremental, {path})
        assert got == outcome(reference, None, fresh=True)
        assert builds == expected


def test_a_namespace_holding_an_l4_route_takes_the_full_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Selector listener present, a TCPRoute in apps: relabelling apps could change its
    attachment, which no patch follows (the full build); relabelling default is patched."""
    Tree(tmp_path, random.Random(8)).setup()
    write(
        tmp_path / "tcp.yaml", tcp_route("t", "s0").replace("namespace: default", "namespace: apps")
    )
    incremental, reference = new_pipeline(tmp_path), new_pipeline(tmp_path)
    assert outcome(incremental, None, fresh=False) == outcome(reference, None, fresh=True)
    for ns, expected in (("default", 0), ("apps", 1), ("default", 0)):
        path = tmp_path / f"ns-{ns}.yaml"
        write(path, namespace(ns, "red" if path.exists() else "blue"))
        got, builds = _compile_counting_builds(monkeypatch, incremental, {path})
        assert got == outcome(reference, None, fresh=True)
        assert builds == expected
