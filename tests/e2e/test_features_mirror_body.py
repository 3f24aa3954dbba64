"""RequestMirror for requests with a body, through `turnout run`.

The mirror backend here is an in-process recorder that keeps each request's method,
path and body, so a test can check the copy is byte-for-byte the request (fixed length
and chunked). A second mirror backend accepts connections and never reads from them:
requests mirrored to it must still reach the primary whole, and the gateway must give
up on the stalled copy (close its connection) instead of slowing the client down.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httptools
import httpx
import pytest

from tests.e2e.conftest import (
    INFRA_GATEWAY_YAML,
    Backend,
    Turnout,
    service_yaml,
    wait_for,
)

PORT = 8080
HOST = "mirror-body.example"


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes


@dataclass
class Recorder:
    """A mirror backend that records whole requests (HTTP/1.1, keep-alive)."""

    sock: socket.socket
    seen: list[Recorded] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        recorder = self

        class Parser:
            url = b""
            body = b""

            def on_url(self, url: bytes) -> None:
                self.url += url

            def on_body(self, body: bytes) -> None:
                self.body += body

            def on_message_complete(self) -> None:
                method = parser.get_method().decode()
                recorder.seen.append(Recorded(method, self.url.decode(), self.body))
                self.url, self.body = b"", b""
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

        parser = httptools.HttpRequestParser(Parser())
        with conn, contextlib.suppress(OSError, httptools.HttpParserError):
            while data := conn.recv(65536):
                parser.feed_data(data)


def _listening(rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # inherited by accept
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


class Stalled:
    """Accepts connections and reads nothing until asked to drain one."""

    def __init__(self) -> None:
        self.sock = _listening(rcvbuf=4096)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.sock.accept()[0])

    def drain(self, conn: socket.socket, timeout: float) -> tuple[int, bool]:
        """Read everything sent on ``conn``: (bytes, whether the peer closed it)."""
        conn.settimeout(timeout)
        total = 0
        try:
            while data := conn.recv(1 << 20):
                total += len(data)
        except ConnectionResetError:
            return total, True
        except TimeoutError:
            return total, False
        return total, True

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def _service(name: str, port: int) -> str:
    """A Service whose one endpoint is an in-process server on ``port``."""
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: infra}}
spec:
  ports: [{{name: http, port: 8080, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}
  namespace: infra
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints:
  - addresses: ["127.0.0.1"]
"""


CONFIG = (
    INFRA_GATEWAY_YAML
    + f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: mirror-body, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{HOST}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /mirror}}}}]
    filters:
    - type: RequestMirror
      requestMirror: {{backendRef: {{name: recorder, port: 8080}}}}
    backendRefs: [{{name: primary, port: 8080}}]
  - matches: [{{path: {{type: PathPrefix, value: /stalled}}}}]
    filters:
    - type: RequestMirror
      requestMirror: {{backendRef: {{name: stalled, port: 8080}}}}
    backendRefs: [{{name: primary, port: 8080}}]
"""
)


@dataclass
class Env:
    address: str
    recorder: Recorder
    stalled: Stalled


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Iterator[Env]:
    directory: Path = tmp_path_factory.mktemp("mirror-body")
    primary = module_backends("primary", "infra")
    recorder = Recorder(_listening())
    threading.Thread(target=recorder.serve, daemon=True).start()
    stalled = Stalled()
    (directory / "all.yaml").write_text(
        CONFIG
        + service_yaml("primary", "infra", [primary])
        + _service("recorder", recorder.port)
        + _service("stalled", stalled.port)
    )
    t = module_turnout(directory)
    yield Env(t.address("gw", "infra"), recorder, stalled)
    recorder.sock.close()
    stalled.close()


def _post(env: Env, path: str, body: bytes, *, chunked: bool = False) -> dict[str, object]:
    conn = http.client.HTTPConnection(env.address, PORT, timeout=30)
    try:
        if chunked:
            pieces = (body[i : i + 7000] for i in range(0, len(body), 7000))
            conn.request("POST", path, body=pieces, headers={"Host": HOST}, encode_chunked=True)
        else:
            conn.request("POST", path, body=body, headers={"Host": HOST})
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 200, (resp.status, data)
    finally:
        conn.close()
    seen: dict[str, object] = json.loads(data)
    return seen


def test_request_mirror_with_body(env: Env) -> None:
    """A POST with a body (fixed length, then chunked) reaches the primary whole, and
    the mirror backend receives the same method, path and body bytes."""
    for i, chunked in enumerate((False, True)):
        body = os.urandom(300_000 + i)
        seen = _post(env, f"/mirror/{i}", body, chunked=chunked)
        assert (seen["pod"], seen["body_length"]) == ("primary", len(body)), seen
        path = f"/mirror/{i}"
        wait_for(
            lambda path=path: any(r.path == path for r in env.recorder.seen),  # type: ignore[misc]
            timeout=10,
            what="the mirrored request",
        )
        copy = next(r for r in env.recorder.seen if r.path == path)
        assert copy.method == "POST"
        assert hashlib.sha256(copy.body).hexdigest() == hashlib.sha256(body).hexdigest()


def test_stalled_mirror_does_not_hold_back_the_primary(env: Env) -> None:
    """A mirror backend that reads nothing: the 16 MiB request still reaches the primary
    whole, and the gateway closes the stalled mirror's connection having sent it only a
    bounded part of the body."""
    size = 16 * 1024 * 1024
    seen = _post(env, "/stalled", b"x" * size)
    assert (seen["pod"], seen["body_length"]) == ("primary", size), seen
    wait_for(lambda: bool(env.stalled.accepted), timeout=5, what="the mirror connection")
    # The copy is given up either while its connection is still being opened (that
    # connection then goes to the pool unused: nothing received, still open) or once
    # sent bytes pile up (closed after part of the body). Never the whole body.
    drained = [env.stalled.drain(conn, timeout=2) for conn in env.stalled.accepted]
    assert sum(received for received, _ in drained) < size, drained
    assert all(closed for received, closed in drained if received), drained


def test_request_mirror_with_body_over_http2(env: Env) -> None:
    """The same through an HTTP/2 (h2c prior knowledge) client: with a content-length,
    and without one (the body is then chunked towards the primary and the mirror)."""
    for i, sized in enumerate((True, False)):
        body = os.urandom(200_000 + i)
        path = f"/mirror/h2-{i}"
        content: bytes | Iterator[bytes] = body if sized else iter([body[:70_000], body[70_000:]])
        with httpx.Client(http1=False, http2=True) as client:
            resp = client.post(
                f"http://{env.address}:{PORT}{path}", content=content, headers={"host": HOST}
            )
        assert resp.http_version == "HTTP/2"
        assert resp.status_code == 200, resp.text
        assert resp.json()["body_length"] == len(body)
        wait_for(
            lambda path=path: any(r.path == path for r in env.recorder.seen),  # type: ignore[misc]
            timeout=10,
            what="the mirrored request",
        )
        copy = next(r for r in env.recorder.seen if r.path == path)
        assert hashlib.sha256(copy.body).digest() == hashlib.sha256(body).digest()
