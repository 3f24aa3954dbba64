"""HTTPS listeners in the data plane: SNI, certificates, 421, rotation, redaction.

Key pairs are generated with trustme for each run; nothing secret is committed.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
import trustme

from turnout import ir
from turnout.dataplane import DataPlane
from turnout.demo.echo import start_echo

from .helpers import free_port, rule, to

pytestmark = pytest.mark.timeout(30)

ADDR = "127.0.0.1"


@dataclass
class Answer:
    status: int
    body: bytes
    subject_names: list[str]  # DNS SANs of the certificate the server presented

    def json(self) -> Any:
        return json.loads(self.body)


def _get(
    port: int, sni: str | None, host: str, ca: trustme.CA, path: str = "/", conn_count: int = 1
) -> list[Answer]:
    """``conn_count`` requests on one TLS connection with this SNI (None: no SNI)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.check_hostname = False  # the SNI may be one the certificate does not name
    with (
        socket.create_connection((ADDR, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=sni) as sock,
    ):
        cert = sock.getpeercert() or {}
        names = [str(v) for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        assert sock.selected_alpn_protocol() in (None, "http/1.1")
        answers = []
        for _ in range(conn_count):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            response = http.client.HTTPResponse(sock)
            response.begin()
            answers.append(Answer(response.status, response.read(), names))
        return answers


async def get(port: int, sni: str | None, host: str, ca: trustme.CA, **kw: Any) -> Answer:
    return (await asyncio.to_thread(_get, port, sni, host, ca, **kw))[0]


def certificate(ca: trustme.CA, *names: str, name: str = "c") -> ir.TLSCertificate:
    issued = ca.issue_cert(*names)
    return ir.TLSCertificate(
        name=f"secret/default/{name}",
        cert_chain=issued.cert_chain_pems[0].bytes().decode(),
        private_key=issued.private_key_pem.bytes().decode(),
        hostnames=tuple(names),
    )


def https_listener(
    port: int,
    name: str,
    hostname: str | None,
    cluster: str,
    certs: tuple[ir.TLSCertificate, ...],
) -> ir.Listener:
    return ir.Listener(
        name=f"default/gw/{name}",
        address=ADDR,
        port=port,
        spec_port=443,
        protocol="HTTPS",
        hostname=hostname,
        virtual_hosts=(ir.VirtualHost(hostname or "*", (rule(name, backends=(to(cluster),)),)),),
        tls=ir.ListenerTLS(certs),
    )


def tls_config(
    listeners: list[ir.Listener], clusters: dict[str, int], version: int = 1
) -> ir.Config:
    return ir.Config(
        version=version,
        gateways=(ir.Gateway("default/gw", ADDR, tuple(listeners)),),
        clusters={n: ir.Cluster(n, (ir.Endpoint(ADDR, p),)) for n, p in clusters.items()},
    )


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=1.0)


@pytest.fixture
async def echoes() -> AsyncIterator[dict[str, int]]:
    servers = {name: await start_echo(ADDR, 0, name=name) for name in ("v1", "v2", "v3", "v4")}
    yield {name: s.sockets[0].getsockname()[1] for name, s in servers.items()}
    for server in servers.values():
        server.close()


def misdirected_config(port: int, ca: trustme.CA, clusters: dict[str, int]) -> ir.Config:
    """The listeners of conformance's same-namespace-with-https-listener Gateway."""
    shared = certificate(ca, "*.org", "*.wildcard.org")
    return tls_config(
        [
            https_listener(port, "https", None, "v1", (shared,)),
            https_listener(port, "https-with-hostname", "second-example.org", "v2", (shared,)),
            https_listener(port, "https-with-wildcard-hostname", "*.wildcard.org", "v3", (shared,)),
            https_listener(
                port,
                "https-with-hostname-matching-wildcard",
                "fourth-example.wildcard.org",
                "v4",
                (shared,),
            ),
        ],
        clusters,
    )


# (SNI, Host, status, backend) from HTTPRouteHTTPSListenerDetectMisdirectedRequests.
MISDIRECTED_CASES = [
    ("example.org", "example.org", 200, "v1"),
    ("example.org", "second-example.org", 421, None),
    ("second-example.org", "second-example.org", 200, "v2"),
    ("second-example.org", "example.org", 421, None),
    ("second-example.org", "unknown-example.org", 421, None),
    ("third-example.wildcard.org", "third-example.wildcard.org", 200, "v3"),
    ("third-example.wildcard.org", "fith-example.wildcard.org", 200, "v3"),
    ("third-example.wildcard.org", "fourth-example.wildcard.org", 421, None),
    ("third-example.wildcard.org", "second-example.org", 421, None),
    ("fourth-example.wildcard.org", "fourth-example.wildcard.org", 200, "v4"),
    ("fourth-example.wildcard.org", "fith-example.wildcard.org", 421, None),
    ("unknown-example.org", "example.org", 200, "v1"),
]


async def test_misdirected_requests(dataplane: DataPlane, echoes: dict[str, int]) -> None:
    ca = trustme.CA()
    port = free_port()
    results = await dataplane.apply(misdirected_config(port, ca, echoes))
    assert set(results.values()) == {None}
    for sni, host, status, backend in MISDIRECTED_CASES:
        answer = await get(port, sni, host, ca)
        assert answer.status == status, (sni, host)
        if backend is not None:
            assert answer.json()["pod"] == backend, (sni, host)
            assert answer.json()["headers"]["X-Forwarded-Proto"] == ["https"]


async def test_no_listener_for_host_is_404(dataplane: DataPlane, echoes: dict[str, int]) -> None:
    ca = trustme.CA()
    port = free_port()
    only = https_listener(port, "a", "a.example.com", "v1", (certificate(ca, "a.example.com"),))
    await dataplane.apply(tls_config([only], echoes))
    assert (await get(port, "a.example.com", "a.example.com", ca)).status == 200
    assert (await get(port, "a.example.com", "b.example.com", ca)).status == 404


async def test_sni_selects_listener_and_certificate(
    dataplane: DataPlane, echoes: dict[str, int]
) -> None:
    ca = trustme.CA()
    port = free_port()
    foo = certificate(ca, "foo.example.com", name="foo")
    wildcard = certificate(ca, "*.example.com", name="wildcard")
    bar = certificate(ca, "bar.example.com", name="bar")
    listeners = [
        https_listener(port, "foo", "foo.example.com", "v1", (foo,)),
        https_listener(port, "any-example", "*.example.com", "v2", (wildcard, bar)),
    ]
    await dataplane.apply(tls_config(listeners, echoes))
    answer = await get(port, "foo.example.com", "foo.example.com", ca)
    assert (answer.json()["pod"], answer.subject_names) == ("v1", ["foo.example.com"])
    # within a listener, the certificate naming the SNI best
    answer = await get(port, "bar.example.com", "bar.example.com", ca)
    assert (answer.json()["pod"], answer.subject_names) == ("v2", ["bar.example.com"])
    answer = await get(port, "baz.example.com", "baz.example.com", ca)
    assert (answer.json()["pod"], answer.subject_names) == ("v2", ["*.example.com"])
    # no listener for the SNI and no catch-all: the handshake fails
    with pytest.raises(ssl.SSLError):
        await get(port, "other.test", "other.test", ca)
    with pytest.raises(ssl.SSLError):
        await get(port, None, "foo.example.com", ca)


async def test_no_sni_uses_listener_without_hostname(
    dataplane: DataPlane, echoes: dict[str, int]
) -> None:
    ca = trustme.CA()
    port = free_port()
    catch_all = https_listener(port, "any", None, "v3", (certificate(ca, "fallback.test"),))
    await dataplane.apply(tls_config([catch_all], echoes))
    answer = await get(port, None, "whatever.test", ca)
    assert (answer.status, answer.json()["pod"]) == (200, "v3")


async def test_rotation_keeps_socket_and_connections(
    dataplane: DataPlane, echoes: dict[str, int]
) -> None:
    ca = trustme.CA()
    port = free_port()
    old = certificate(ca, "rotate.example.com", "old.example.com")
    new = certificate(ca, "rotate.example.com", "new.example.com")
    await dataplane.apply(tls_config([https_listener(port, "r", None, "v1", (old,))], echoes))

    # A connection opened before the rotation keeps working after it.
    context = ssl.create_default_context()
    ca.configure_trust(context)
    reader, writer = await asyncio.open_connection(
        ADDR, port, ssl=context, server_hostname="rotate.example.com"
    )
    request = b"GET / HTTP/1.1\r\nHost: rotate.example.com\r\n\r\n"
    writer.write(request)
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    await reader.readuntil(b"\r\n\r\n")

    before = await get(port, "rotate.example.com", "rotate.example.com", ca)
    assert "old.example.com" in before.subject_names
    results = await dataplane.apply(
        tls_config([https_listener(port, "r", None, "v1", (new,))], echoes, version=2)
    )
    assert results == {"default/gw/r": None}
    after = await get(port, "rotate.example.com", "rotate.example.com", ca)
    assert "new.example.com" in after.subject_names

    # drain the first response's body, then reuse the old connection
    await asyncio.sleep(0.05)
    while True:
        try:
            await asyncio.wait_for(reader.read(65536), 0.1)
        except TimeoutError:
            break
    writer.write(request)
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_unloadable_certificate_is_reported(
    dataplane: DataPlane, echoes: dict[str, int]
) -> None:
    port = free_port()
    broken = ir.TLSCertificate("secret/default/x", "not a pem", "not a key", ("x.test",))
    results = await dataplane.apply(
        tls_config([https_listener(port, "x", None, "v1", (broken,))], echoes)
    )
    error = results["default/gw/x"]
    assert error is not None and "cannot terminate TLS" in error


def test_json_redacts_private_keys_msgpack_keeps_them() -> None:
    ca = trustme.CA()
    cert = certificate(ca, "a.test")
    config = tls_config([https_listener(1, "a", None, "v1", (cert,))], {"v1": 1})
    dumped = ir.to_json(config)
    assert b"PRIVATE KEY" not in dumped
    listener = json.loads(dumped)["gateways"][0]["listeners"][0]
    assert listener["tls"]["certificates"][0]["private_key"] == "<redacted>"
    assert "BEGIN CERTIFICATE" in listener["tls"]["certificates"][0]["cert_chain"]
    assert ir.from_msgpack(ir.to_msgpack(config)) == config
    assert msgspec.json.decode(dumped)  # still valid JSON
