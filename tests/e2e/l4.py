"""Helpers for the TCPRoute, TLSRoute and UDPRoute tests: echo backends and clients.

Backends are `turnout.demo.l4echo` processes: TCP ones greet every connection with a
JSON line naming themselves, echo what they get and answer an EOF with an
`{"eof": true, ...}` line; UDP ones answer each datagram with JSON naming themselves
and the peer (the gateway's per-session upstream address).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import free_port, wait_for


@dataclass
class L4Backend:
    name: str
    namespace: str
    port: int
    process: subprocess.Popen[bytes]
    address: str = "127.0.0.1"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_l4_backend(
    name: str,
    namespace: str = "default",
    *,
    udp: bool = False,
    tls_files: tuple[Path, Path] | None = None,
) -> L4Backend:
    """A TCP (TLS with `tls_files` = (cert, key)) or UDP echo backend on a free port."""
    port = _free_udp_port() if udp else free_port()
    where = ["--udp" if udp else "--tcp", f"127.0.0.1:{port}"]
    if tls_files is not None:
        where += ["--tls-cert", str(tls_files[0]), "--tls-key", str(tls_files[1])]
    proc = subprocess.Popen(
        [sys.executable, "-m", "turnout.demo.l4echo", *where, "--name", name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    backend = L4Backend(name, namespace, port, proc)
    try:
        if udp:
            wait_for(lambda: udp_ask("127.0.0.1", port, "ping")["backend"] == name)
        else:
            wait_for(lambda: _accepts("127.0.0.1", port), what=f"backend {name}")
    except AssertionError:
        proc.kill()
        raise
    return backend


def _accepts(address: str, port: int) -> bool:
    with socket.create_connection((address, port), timeout=1):
        return True


def stop_l4_backends(started: list[L4Backend]) -> None:
    for backend in started:
        backend.process.terminate()
    for backend in started:
        backend.process.wait(10)


@pytest.fixture(scope="module")
def l4_backends() -> Iterator[Callable[..., L4Backend]]:
    started: list[L4Backend] = []

    def start(name: str, namespace: str = "default", **kwargs: Any) -> L4Backend:
        backend = launch_l4_backend(name, namespace, **kwargs)
        started.append(backend)
        return backend

    yield start
    stop_l4_backends(started)


def l4_service_yaml(
    name: str, namespace: str, backends: list[L4Backend], port: int, protocol: str = "TCP"
) -> str:
    """A Service with one port and one EndpointSlice per backend."""
    slices = "".join(
        f"""---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-{i}
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: p, port: {b.port}, protocol: {protocol}}}]
endpoints: [{{addresses: ["{b.address}"]}}]
"""
        for i, b in enumerate(backends)
    )
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  ports: [{{name: p, port: {port}, protocol: {protocol}}}]
{slices}"""


class Stream:
    """A client connection to a TCP listener, reading the backend's JSON lines."""

    def __init__(self, sock: socket.socket | ssl.SSLSocket) -> None:
        self.sock = sock
        self._buffer = b""

    def line(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a full line")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        result: dict[str, Any] = json.loads(line)
        return result

    def exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed early")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def close(self) -> None:
        self.sock.close()


def tcp_connect(address: str, port: int, timeout: float = 5.0) -> Stream:
    return Stream(socket.create_connection((address, port), timeout=timeout))


def tcp_hello(address: str, port: int) -> dict[str, Any]:
    """Connect, read the backend's greeting and close."""
    stream = tcp_connect(address, port)
    try:
        return stream.line()
    finally:
        stream.close()


def tls_connect(address: str, port: int, server_name: str, ca: Any, timeout: float = 5.0) -> Stream:
    """A TLS client that verifies the served certificate for `server_name` with `ca`
    (a trustme.CA)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    raw = socket.create_connection((address, port), timeout=timeout)
    try:
        return Stream(context.wrap_socket(raw, server_hostname=server_name))
    except BaseException:
        raw.close()
        raise


def rejected(connect: Callable[[], Stream]) -> bool:
    """True when the gateway refuses the stream: reset or closed before any greeting."""
    try:
        stream = connect()
    except (ConnectionError, ssl.SSLError, OSError):
        return True
    try:
        stream.line()
    except (ConnectionError, ssl.SSLError, OSError):
        return True
    finally:
        stream.close()
    return False


def udp_ask(
    address: str, port: int, text: str, sock: socket.socket | None = None, timeout: float = 2.0
) -> dict[str, Any]:
    """Send one datagram and return the JSON answer (on `sock` when given)."""
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(text.encode(), (address, port))
        data, _ = s.recvfrom(65536)
        result: dict[str, Any] = json.loads(data)
        return result
    finally:
        if own:
            s.close()


def eventually(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ConnectionError, ssl.SSLError, ValueError):
            if check():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
