"""ListenerSet (GEP-1713) through `turnout run`: listeners that another namespace adds to
a Gateway, routing through them, precedence on conflicts, and live changes.

One `turnout run` serves the module; each test edits its own file in the watched
directory when it changes configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    CLASS_YAML,
    Backend,
    Turnout,
    request,
    service_yaml,
    wait_for,
)

GATEWAY = """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shared, namespace: infra}
spec:
  gatewayClassName: turnout
  allowedListeners:
    namespaces:
      from: Selector
      selector: {matchLabels: {gateway-access: granted}}
  listeners:
  - {name: main, port: 8080, protocol: HTTP, hostname: main.example.com, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: v1
kind: Namespace
metadata: {name: team, labels: {gateway-access: granted}}
---
apiVersion: v1
kind: Namespace
metadata: {name: outsiders}
"""

LISTENER_SETS = """---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: team-listeners, namespace: team}
spec:
  parentRef: {name: shared, namespace: infra}
  listeners:
  - {name: web, port: 8080, protocol: HTTP, hostname: team.example.com}
  - {name: admin, port: 9090, protocol: HTTP, hostname: admin.team.example.com}
  - {name: main-clash, port: 8080, protocol: HTTP, hostname: main.example.com}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: sneaky, namespace: outsiders}
spec:
  parentRef: {name: shared, namespace: infra}
  listeners:
  - {name: web, port: 8080, protocol: HTTP, hostname: outsiders.example.com}
"""

ROUTES = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: team-app, namespace: team}
spec:
  parentRefs: [{kind: ListenerSet, group: gateway.networking.k8s.io, name: team-listeners}]
  rules: [{backendRefs: [{name: team-app, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: team-admin, namespace: team}
spec:
  parentRefs:
  - {kind: ListenerSet, group: gateway.networking.k8s.io, name: team-listeners, sectionName: admin}
  rules: [{matches: [{path: {type: PathPrefix, value: /admin}}], backendRefs: [{name: team-admin, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: main-app, namespace: infra}
spec:
  parentRefs: [{name: shared}]
  rules: [{backendRefs: [{name: main-app, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: outsider-app, namespace: outsiders}
spec:
  parentRefs: [{kind: ListenerSet, group: gateway.networking.k8s.io, name: sneaky}]
  rules: [{backendRefs: [{name: main-app, port: 8080, namespace: infra}]}]
"""


@dataclass
class Env:
    turnout: Turnout
    directory: Path

    @property
    def address(self) -> str:
        return self.turnout.address("shared", "infra")

    def who(self, port: int, host: str, path: str = "/") -> str:
        resp = request(self.address, port, path, host=host)
        return str(resp.json()["pod"]) if resp.status == 200 else str(resp.status)


def conditions(entry: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in entry["conditions"]}


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Env:
    directory: Path = tmp_path_factory.mktemp("listenerset")
    services = service_yaml("main-app", "infra", [module_backends("main-app", "infra")])
    for name in ("team-app", "team-admin"):
        services += service_yaml(name, "team", [module_backends(name, "team")])
    (directory / "base.yaml").write_text(CLASS_YAML + GATEWAY + services + ROUTES)
    (directory / "listenersets.yaml").write_text(LISTENER_SETS)
    return Env(module_turnout(directory), directory)


def test_listener_set_status(env: Env) -> None:
    """Only a ListenerSet from a selected namespace attaches; its entry that clashes
    with the Gateway's own listener is rejected and the Gateway's keeps serving."""
    gateway = env.turnout.find("Gateway", "shared", "infra")
    assert gateway["status"]["attachedListenerSets"] == 1
    team = env.turnout.find("ListenerSet", "team-listeners", "team")
    assert conditions(team["status"]) == {
        "Accepted": ("True", "ListenersNotValid"),
        "Programmed": ("True", "Programmed"),
    }
    listeners = {ln["name"]: ln for ln in team["status"]["listeners"]}
    assert conditions(listeners["web"])["Programmed"] == ("True", "Programmed")
    assert listeners["web"]["attachedRoutes"] == 1
    assert listeners["admin"]["attachedRoutes"] == 2
    assert conditions(listeners["main-clash"])["Conflicted"] == ("True", "HostnameConflict")
    assert conditions(listeners["main-clash"])["Programmed"] == ("False", "HostnameConflict")
    sneaky = env.turnout.find("ListenerSet", "sneaky", "outsiders")
    assert conditions(sneaky["status"])["Accepted"] == ("False", "NotAllowed")
    outsider = env.turnout.find("HTTPRoute", "outsider-app", "outsiders")
    assert conditions(outsider["status"]["parents"][0])["Accepted"][0] == "False"


def test_routing_through_listener_sets(env: Env) -> None:
    """Routes reach a ListenerSet's listeners only through a ListenerSet parentRef; a
    ListenerSet entry on a new port gets its own socket on the Gateway's address."""
    assert env.who(8080, "main.example.com") == "main-app"
    assert env.who(8080, "team.example.com") == "team-app"
    assert env.who(9090, "admin.team.example.com", "/admin/x") == "team-admin"
    assert env.who(9090, "admin.team.example.com", "/other") == "team-app"
    # The Gateway's route does not leak onto the ListenerSet's hosts, nor the other way.
    assert env.who(8080, "team.example.com", "/admin") == "team-app"
    assert env.who(9090, "main.example.com") == "404"
    # The rejected ListenerSet serves nothing.
    assert env.who(8080, "outsiders.example.com") == "404"


def test_listener_set_removed_and_restored(env: Env) -> None:
    """Deleting the ListenerSet removes its listeners (the new port closes) and the
    Gateway stops counting it; putting it back serves again."""
    path = env.directory / "listenersets.yaml"
    text = path.read_text()
    path.write_text("")
    try:
        wait_for(lambda: env.who(8080, "team.example.com") == "404", what="team host gone")
        wait_for(
            lambda: (
                env.turnout.find("Gateway", "shared", "infra")["status"].get(
                    "attachedListenerSets", 0
                )
                == 0
            ),
            what="attachedListenerSets back to 0",
        )
        assert env.who(8080, "main.example.com") == "main-app"
        with pytest.raises(OSError):
            request(env.address, 9090, "/admin", host="admin.team.example.com")
    finally:
        path.write_text(text)
    wait_for(lambda: env.who(9090, "admin.team.example.com", "/admin") == "team-admin")
