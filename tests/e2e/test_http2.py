"""HTTP/2 through `turnout run`: ALPN h2, h2c prior knowledge and Upgrade, h2c backends.

One gateway with an HTTP and an HTTPS listener; `/h2c...` goes to an HTTP/2 cleartext
backend (:mod:`turnout.demo.h2echo`, Service port appProtocol kubernetes.io/h2c),
everything else to the HTTP/1.1 echo backend.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
import trustme

from tests.e2e.conftest import (
    CLASS_YAML,
    Backend,
    Turnout,
    free_port,
    request,
    service_yaml,
    wait_for,
)
from tests.e2e.test_tls import secret_yaml

HTTPS_PORT = 8443
MiB = 1024 * 1024


@dataclass
class Setup:
    turnout: Turnout
    address: str
    ca: trustme.CA
    h2_backend: Backend


def launch_h2echo(name: str) -> Backend:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "turnout.demo.h2echo",
            "--listen",
            f"127.0.0.1:{port}",
            "--name",
            name,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    wait_for(up, what=f"h2c backend {name}")
    return Backend(name, "default", port, proc)


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("http2")
    ca = trustme.CA()
    echo = module_backends("echo")
    h2_backend = launch_h2echo("h2echo")
    try:
        text = (
            CLASS_YAML
            + f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: turnout
  listeners:
  - {{name: http, port: 8080, protocol: HTTP}}
  - {{name: https, port: {HTTPS_PORT}, protocol: HTTPS, tls: {{certificateRefs: [{{name: cert}}]}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /h2c}}}}]
    backendRefs: [{{name: h2svc, port: 8080}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {{add: [{{name: X-Via, value: turnout}}]}}
  - backendRefs: [{{name: echo, port: 8080}}]
"""
        )
        text += service_yaml("echo", "default", [echo])
        text += service_yaml("h2svc", "default", [h2_backend], app_protocol="kubernetes.io/h2c")
        (directory / "all.yaml").write_text(text)
        # The certificate is for the address the Gateway gets: known once it runs.
        t = module_turnout(directory)
        address = t.address("gw")
        (directory / "secret.yaml").write_text(secret_yaml(ca, "cert", address))

        def serving() -> bool:
            with socket.create_connection((address, HTTPS_PORT), timeout=1):
                return True

        wait_for(serving, what="the HTTPS listener")
        yield Setup(t, address, ca, h2_backend)
    finally:
        h2_backend.process.terminate()
        h2_backend.process.wait(10)


def _h2c(setup: Setup) -> httpx.Client:
    return httpx.Client(http1=False, http2=True, base_url=f"http://{setup.address}:8080")


def test_h2c_backend_route_is_accepted(setup: Setup) -> None:
    route = setup.turnout.find("HTTPRoute", "web")
    conditions = {c["type"]: c["status"] for c in route["status"]["parents"][0]["conditions"]}
    assert conditions == {"Accepted": "True", "ResolvedRefs": "True"}


def test_http1_client_to_h2c_backend(setup: Setup) -> None:
    """Conformance HTTPRouteBackendProtocolH2C: the backend receives HTTP/2."""
    response = request(setup.address, 8080, "/h2c/plain", host="h2c.example")
    assert response.status == 200
    echoed = response.json()
    assert echoed["proto"] == "HTTP/2"
    assert echoed["host"] == "h2c.example"
    assert echoed["path"] == "/h2c/plain"
    assert echoed["headers"]["x-forwarded-for"] == ["127.0.0.1"]
    assert response.headers["x-via"] == "turnout"


def test_h2c_prior_knowledge_to_http1_backend(setup: Setup) -> None:
    with _h2c(setup) as client:
        response = client.get("/plain?q=1", headers={"x-test": "yes", "cookie": "a=1"})
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["proto"] == "HTTP/1.1"
    assert echoed["path"] == "/plain?q=1"
    assert echoed["headers"]["X-Test"] == ["yes"]
    assert echoed["headers"]["X-Forwarded-Proto"] == ["http"]


def test_h2c_prior_knowledge_to_h2c_backend(setup: Setup) -> None:
    with _h2c(setup) as client:
        response = client.get("/h2c/x")
    assert response.http_version == "HTTP/2"
    assert response.json()["proto"] == "HTTP/2"
    assert response.headers["x-via"] == "turnout"


def test_https_negotiates_h2_with_alpn(setup: Setup) -> None:
    context = ssl.create_default_context()
    setup.ca.configure_trust(context)
    base = f"https://{setup.address}:{HTTPS_PORT}"
    with httpx.Client(http2=True, verify=context, base_url=base) as client:
        plain = client.get("/tls")
        h2c = client.get("/h2c/tls")
    assert plain.http_version == "HTTP/2"
    assert plain.json()["headers"]["X-Forwarded-Proto"] == ["https"]
    assert h2c.json()["proto"] == "HTTP/2"
    with httpx.Client(http2=False, verify=context, base_url=base) as client:
        assert client.get("/tls").http_version == "HTTP/1.1"  # ALPN http/1.1 still works


def test_many_streams_on_one_connection(setup: Setup) -> None:
    """200 concurrent streams on one client connection, multiplexed onto the backend."""

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            http1=False, http2=True, base_url=f"http://{setup.address}:8080"
        ) as client:
            return await asyncio.gather(*(client.get(f"/h2c/{i}") for i in range(200)))

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 200
    assert [r.json()["path"] for r in responses] == [f"/h2c/{i}" for i in range(200)]
    assert len({r.json()["connection"] for r in responses}) <= 2  # shared, not one each


@pytest.mark.parametrize("path", ["/h2c/big", "/big"])
def test_large_bodies_both_ways(setup: Setup, path: str) -> None:
    body = b"z" * (8 * MiB)
    with _h2c(setup) as client:
        up = client.post(path, content=body)
        assert up.status_code == 200
        assert up.json()["body_length"] == len(body)
        down = client.get(path, headers={"x-echo-body-size": str(8 * MiB)})
    assert down.status_code == 200
    assert len(down.content) == 8 * MiB


class RawH2:
    """A blocking h2 client on a socket, for trailers and Upgrade."""

    def __init__(self, sock: socket.socket, conn: h2.connection.H2Connection) -> None:
        self.sock = sock
        self.conn = conn
        self.events: list[h2.events.Event] = []

    @classmethod
    def connect(cls, address: str) -> RawH2:
        sock = socket.create_connection((address, 8080), timeout=10)
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        return cls(sock, conn)

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def feed(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            self.events.append(event)
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id or 0
                )
        self.flush()

    def wait_ended(self, stream_id: int) -> None:
        while not any(
            isinstance(e, h2.events.StreamEnded | h2.events.StreamReset)
            and e.stream_id == stream_id
            for e in self.events
        ):
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.feed(data)

    def of(self, kind: type[Any], stream_id: int) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind) and e.stream_id == stream_id]

    def body(self, stream_id: int) -> bytes:
        return b"".join(e.data for e in self.of(h2.events.DataReceived, stream_id))


def test_trailers_both_ways(setup: Setup) -> None:
    client = RawH2.connect(setup.address)
    try:
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", "t.example")]
        client.conn.send_headers(1, [*headers, (":path", "/h2c/trailers")])
        client.conn.send_data(1, b"payload")
        client.conn.send_headers(1, [("x-request-trailer", "sent")], end_stream=True)
        client.flush()
        client.wait_ended(1)
        echoed = json.loads(client.body(1))
        assert echoed["trailers"] == {"x-request-trailer": ["sent"]}
        assert echoed["body_length"] == len(b"payload")
        (trailers,) = client.of(h2.events.TrailersReceived, 1)
        assert dict(trailers.headers) == {b"x-echo-trailer": b"done"}
    finally:
        client.sock.close()


def test_h2c_upgrade(setup: Setup) -> None:
    sock = socket.create_connection((setup.address, 8080), timeout=10)
    try:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        settings = conn.initiate_upgrade_connection()
        sock.sendall(
            b"GET /upgraded HTTP/1.1\r\nHost: up.example\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: " + settings + b"\r\n\r\n" + conn.data_to_send()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        client = RawH2(sock, conn)
        client.feed(rest)
        client.wait_ended(1)
        (response,) = client.of(h2.events.ResponseReceived, 1)
        assert dict(response.headers)[b":status"] == b"200"
        echoed = json.loads(client.body(1))
        assert echoed["path"] == "/upgraded"
        assert echoed["host"] == "up.example"
        # The connection is HTTP/2 now: a second request on stream 3.
        conn.send_headers(
            3,
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "up.example"),
                (":path", "/h2c/second"),
            ],
            end_stream=True,
        )
        client.flush()
        client.wait_ended(3)
        assert json.loads(client.body(3))["proto"] == "HTTP/2"
    finally:
        sock.close()
