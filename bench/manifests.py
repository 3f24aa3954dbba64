"""Gateway API manifests for the benchmarks: one Gateway and N HTTPRoutes, as YAML files.

Shared by ``bench/run.py`` (the 1- and 1,000-route data-plane tables) and ``bench/scale.py``
(control-plane scale). Everything goes through the real control plane: the files are read
by ``turnout.sources.files`` and compiled by ``graph.build`` / ``ir.build``.

Layout written into a directory::

    00-base.yaml          Namespace "bench", GatewayClass, Gateway "bench/gw" (one HTTP
                          listener on port 80, routes from the same namespace)
    route-00000.yaml      HTTPRoute "r-0" + its Service "svc-0" + EndpointSlice
    ...

Route ``i`` (of ``n``) has a mix of what real tables hold:

* hostnames: ``h{i % H}.bench.test`` with ``H = max(1, n // 10)`` (about ten routes per
  host), every 50th route a wildcard ``*.w{i % H}.bench.test`` instead;
* rule 0: ``PathPrefix /svc{i}/api``, plus a header match ``x-bench-tenant: t{i}`` on odd
  routes; rule 1: ``PathPrefix /svc{i}``;
* a Service ``svc-{i}`` port 80 whose EndpointSlice points at ``endpoint(i)``.

``Target(i)`` is a request that matches rule 0 of route ``i`` (host, path, headers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from turnout import DEFAULT_CONTROLLER_NAME

NAMESPACE = "bench"
GATEWAY = "gw"
LISTENER_PORT = 80  # spec port; the bound port is LISTENER_PORT + --port-offset


@dataclass(frozen=True)
class Target:
    host: str
    path: str  # rule 0's prefix; append "/..." for a request path
    headers: tuple[tuple[str, str], ...]


def hosts_for(n: int) -> int:
    return max(1, n // 10)


def is_wildcard(i: int) -> bool:
    return i % 50 == 49


def target(i: int, n: int) -> Target:
    h = i % hosts_for(n)
    host = f"x.w{h}.bench.test" if is_wildcard(i) else f"h{h}.bench.test"
    headers = (("x-bench-tenant", f"t{i}"),) if i % 2 == 1 else ()
    return Target(host=host, path=f"/svc{i}/api", headers=headers)


def base_yaml() -> str:
    return f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    kubernetes.io/metadata.name: {NAMESPACE}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: bench
spec:
  controllerName: {DEFAULT_CONTROLLER_NAME}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {GATEWAY}
  namespace: {NAMESPACE}
spec:
  gatewayClassName: bench
  listeners:
    - name: http
      port: {LISTENER_PORT}
      protocol: HTTP
"""


def route_yaml(i: int, n: int, endpoint: tuple[str, int], generation: int | None = None) -> str:
    """HTTPRoute r-{i} + Service svc-{i} + EndpointSlice; ``generation`` adds a response
    header ``x-bench-gen: {generation}`` to both rules (the single-route change of scale.py).
    """
    h = i % hosts_for(n)
    hostname = f"*.w{h}.bench.test" if is_wildcard(i) else f"h{h}.bench.test"
    header_match = (
        f"""
          headers:
            - name: x-bench-tenant
              value: t{i}"""
        if i % 2 == 1
        else ""
    )
    filters = (
        f"""
      filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier:
            set:
              - name: x-bench-gen
                value: "{generation}\""""
        if generation is not None
        else ""
    )
    address, port = endpoint
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r-{i}
  namespace: {NAMESPACE}
spec:
  parentRefs:
    - name: {GATEWAY}
  hostnames: ["{hostname}"]
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: /svc{i}/api{header_match}{filters}
      backendRefs:
        - name: svc-{i}
          port: 80
    - matches:
        - path:
            type: PathPrefix
            value: /svc{i}{filters}
      backendRefs:
        - name: svc-{i}
          port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
  namespace: {NAMESPACE}
spec:
  ports:
    - name: http
      port: 80
      targetPort: {port}
      protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-{i}-1
  namespace: {NAMESPACE}
  labels:
    kubernetes.io/service-name: svc-{i}
addressType: IPv4
ports:
  - name: http
    port: {port}
    protocol: TCP
endpoints:
  - addresses: ["{address}"]
    conditions:
      ready: true
"""


def route_file(directory: Path, i: int) -> Path:
    return directory / f"route-{i:05d}.yaml"


def write_atomic(path: Path, text: str) -> None:
    """Write next to ``path`` and rename over it: a watcher never sees a half file."""
    tmp = path.with_name(f".{path.name}.tmp")  # dot file: not a manifest suffix match
    tmp.write_text(text)
    os.replace(tmp, path)


def write_tree(
    directory: Path,
    n: int,
    endpoint_of: dict[int, tuple[str, int]] | None = None,
    default_endpoint: tuple[str, int] = ("127.0.0.1", 1),
) -> None:
    """The base file and ``n`` route files; route ``i`` goes to ``endpoint_of.get(i)``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "00-base.yaml").write_text(base_yaml())
    endpoint_of = endpoint_of or {}
    for i in range(n):
        route_file(directory, i).write_text(route_yaml(i, n, endpoint_of.get(i, default_endpoint)))
