"""WebSocket through `turnout run`: HTTPRouteBackendProtocolWebSocket.

As the conformance test of that name (httproute-backend-protocol-websocket): a rule
whose backendRef is a Service port with ``appProtocol: kubernetes.io/ws``; a real
WebSocket client (the ``websockets`` library) sends a text and a binary message through
the Gateway and gets each back from a real WebSocket echo server. A connection opened
before a configuration reload keeps working after it, also with worker processes.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from tests.e2e.conftest import (
    CLASS_YAML,
    INFRA_GATEWAY_YAML,
    Turnout,
    request,
    service_yaml,
    wait_for,
)
from tests.e2e.test_tls import secret_yaml

PORT = 8080


@dataclass
class WebSocketEcho:
    """A WebSocket echo server in a thread; records the path of each handshake."""

    server: Server
    paths: list[str] = field(default_factory=list)
    address: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.server.socket.getsockname()[1])


def start_ws_echo() -> WebSocketEcho:
    paths: list[str] = []

    def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        paths.append(conn.request.path)
        for message in conn:
            conn.send(message)

    quiet = logging.getLogger("tests.e2e.ws-echo")
    quiet.setLevel(logging.WARNING)  # not "server listening" on every start
    server = serve(handler, "127.0.0.1", 0, logger=quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return WebSocketEcho(server, paths)


def _config(extra_route: str = "") -> str:
    return (
        INFRA_GATEWAY_YAML
        + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend-protocol-ws, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: ws-backend, port: 8080}]
"""
        + extra_route
    )


EXTRA_ROUTE = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: added-later, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [later.example]
  rules:
  - filters:
    - type: RequestRedirect
      requestRedirect: {hostname: elsewhere.example}
"""


@pytest.fixture
def ws_backend() -> Iterator[WebSocketEcho]:
    echo = start_ws_echo()
    yield echo
    echo.server.shutdown()


def _start(
    directory: Path, ws_backend: WebSocketEcho, turnout: Callable[..., Turnout], *extra: str
) -> tuple[Turnout, str]:
    services = service_yaml(
        "ws-backend",
        "infra",
        [ws_backend],
        app_protocol="kubernetes.io/ws",  # type: ignore[list-item]
    )
    (directory / "services.yaml").write_text(services)
    (directory / "routes.yaml").write_text(_config())
    t = turnout(directory, *extra)
    return t, t.address("gw", "infra")


def _round_trip(ws: object, text: str, binary: bytes) -> None:
    ws.send(text)  # type: ignore[attr-defined]
    assert ws.recv(timeout=5) == text  # type: ignore[attr-defined]
    ws.send(binary)  # type: ignore[attr-defined]
    assert ws.recv(timeout=5) == binary  # type: ignore[attr-defined]


def test_websocket_backend_protocol(
    tmp_path: Path, ws_backend: WebSocketEcho, turnout: Callable[..., Turnout]
) -> None:
    """The conformance case: the route is Accepted with ResolvedRefs True, and text and
    binary messages make the round trip through the Gateway."""
    t, address = _start(tmp_path, ws_backend, turnout)
    route = t.find("HTTPRoute", "backend-protocol-ws", "infra")
    conditions = {c["type"]: c["status"] for c in route["status"]["parents"][0]["conditions"]}
    assert conditions == {"Accepted": "True", "ResolvedRefs": "True"}, route
    with connect(f"ws://{address}:{PORT}/ws", origin="ws://gateway/test") as ws:  # type: ignore[arg-type]
        _round_trip(ws, "Websocket Support!", bytes([1, 2, 3, 4, 5, 6, 7]))
        big = bytes(range(256)) * 4096  # 1 MiB in one message: framed across many reads
        ws.send(big)
        assert ws.recv(timeout=10) == big
    assert ws_backend.paths == ["/ws"]
    # Plain HTTP on the same route still works (the echo server refuses non-WebSocket
    # requests with 426 Upgrade Required, which the gateway relays).
    assert request(address, PORT, "/plain").status == 426


@pytest.mark.parametrize("workers", ["1", "2"])
def test_websocket_stays_open_across_reload(
    tmp_path: Path, ws_backend: WebSocketEcho, turnout: Callable[..., Turnout], workers: str
) -> None:
    """A WebSocket opened before a configuration change keeps working after it."""
    t, address = _start(tmp_path, ws_backend, turnout, "--workers", workers)
    with connect(f"ws://{address}:{PORT}/ws") as ws:
        _round_trip(ws, "before", b"\x00before")
        (tmp_path / "routes.yaml").write_text(_config(EXTRA_ROUTE))

        def reloaded() -> bool:
            # Status is published once every worker serves the new configuration.
            return any(
                item["kind"] == "HTTPRoute" and item["metadata"]["name"] == "added-later"
                for item in t.status()
            )

        wait_for(reloaded, timeout=20, what="the new configuration to be served")
        assert request(address, PORT, "/", host="later.example").status == 302
        _round_trip(ws, "after", b"\x00after")
    with connect(f"ws://{address}:{PORT}/ws") as ws:
        _round_trip(ws, "new connection", b"\x01")


def test_websocket_through_https_listener(
    tmp_path: Path, ws_backend: WebSocketEcho, turnout: Callable[..., Turnout]
) -> None:
    """wss:// to an HTTPS listener: the tunnel runs over the TLS connection (the TLS
    transport is handed over as plain ones are), to a plain ws backend."""
    ca = trustme.CA()
    gateway = (
        CLASS_YAML
        + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: turnout
  listeners:
  - {name: https, port: 8443, protocol: HTTPS, hostname: ws.example.org,
     tls: {certificateRefs: [{name: ws-cert}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend-protocol-ws, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: ws-backend, port: 8080}]
"""
    )
    services = service_yaml(
        "ws-backend",
        "infra",
        [ws_backend],  # type: ignore[list-item]
        app_protocol="kubernetes.io/ws",
    )
    (tmp_path / "all.yaml").write_text(
        gateway + secret_yaml(ca, "ws-cert", "ws.example.org", namespace="infra") + services
    )
    t = turnout(tmp_path)
    address = t.address("gw", "infra")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    sock = socket.create_connection((address, 8443), timeout=5)
    with connect("wss://ws.example.org:8443/secure", sock=sock, ssl=context) as ws:
        _round_trip(ws, "over TLS", bytes(range(100)))
    assert ws_backend.paths[-1] == "/secure"
