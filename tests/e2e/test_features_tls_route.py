"""TLSRoute through `turnout run`: Passthrough, Terminate and both on one port (Mixed).

Certificates come from a trustme CA made for the module. Passthrough backends are
`turnout.demo.l4echo --tls-cert ...`: they terminate TLS themselves, so a client that
verifies the chain for its SNI name and finds the *backend's* certificate knows the
gateway did not decrypt; their greeting also reports the SNI they received. Terminate
listeners present the gateway's certificate (a Secret) and forward plaintext to a plain
TCP echo backend (greeting ``"tls": false``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest
import trustme

from tests.e2e.conftest import CLASS_YAML, Turnout
from tests.e2e.l4 import (
    L4Backend,
    Stream,
    eventually,
    l4_backends,
    l4_service_yaml,
    rejected,
    tls_connect,
)

__all__ = ["l4_backends"]  # the fixture, re-exported for pytest


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def certs(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Backend key pairs as files, the gateway's as PEM text, each with its DER."""
    directory = tmp_path_factory.mktemp("certs")
    out: dict[str, Any] = {}
    for name, hostnames in (
        ("abc", ("abc.example.com",)),
        ("wild", ("*.example.com",)),
        ("gateway", ("tls.example.com",)),
    ):
        leaf = ca.issue_cert(*hostnames)
        cert_pem = leaf.cert_chain_pems[0].bytes()
        key_pem = leaf.private_key_pem.bytes()
        (directory / f"{name}.crt").write_bytes(cert_pem)
        (directory / f"{name}.key").write_bytes(key_pem)
        out[name] = {
            "files": (directory / f"{name}.crt", directory / f"{name}.key"),
            "pem": (cert_pem.decode(), key_pem.decode()),
            "der": ssl.PEM_cert_to_DER_cert(cert_pem.decode()),
        }
    return out


def _indent(pem: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in pem.strip().splitlines())


def secret(name: str, pem: tuple[str, str]) -> str:
    return f"""---
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: infra}}
type: kubernetes.io/tls
stringData:
  tls.crt: |
{_indent(pem[0], 4)}
  tls.key: |
{_indent(pem[1], 4)}
"""


def tls_listener(name: str, port: int, mode: str, hostname: str | None = None) -> str:
    host = f"hostname: {hostname}, " if hostname else ""
    refs = ", certificateRefs: [{name: gateway-cert}]" if mode == "Terminate" else ""
    return (
        f"  - {{name: {name}, port: {port}, protocol: TLS, {host}"
        f"tls: {{mode: {mode}{refs}}}, "
        "allowedRoutes: {namespaces: {from: Same}, kinds: [{kind: TLSRoute}]}}\n"
    )


def gateway(name: str, listeners: str) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: infra}}
spec:
  gatewayClassName: turnout
  listeners:
{listeners}"""


def tls_route(name: str, parent: str, hostnames: str, backend: str, port: int = 443) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: {name}, namespace: infra}}
spec:
  parentRefs: [{{name: {parent}}}]
  hostnames: {hostnames}
  rules: [{{backendRefs: [{{name: {backend}, port: {port}}}]}}]
"""


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory,
    module_turnout: Callable[..., Turnout],
    l4_backends: Callable[..., L4Backend],
    certs: dict[str, Any],
) -> Turnout:
    tls_abc = l4_backends("tls-abc", tls_files=certs["abc"]["files"])
    tls_wild = l4_backends("tls-wild", tls_files=certs["wild"]["files"])
    plain = l4_backends("plain")
    docs = [
        CLASS_YAML,
        secret("gateway-cert", certs["gateway"]["pem"]),
        l4_service_yaml("tls-abc", "infra", [tls_abc], 443),
        l4_service_yaml("tls-wild", "infra", [tls_wild], 443),
        l4_service_yaml("plain", "infra", [plain], 3000),
        # conformance TLSRouteSimpleSameNamespace / TLSRouteHostnameIntersection
        gateway("passthrough", tls_listener("tls", 8443, "Passthrough")),
        tls_route("abc", "passthrough", "[abc.example.com]", "tls-abc"),
        tls_route("wild", "passthrough", "['*.example.com']", "tls-wild"),
        # conformance TLSRouteTerminateSimpleSameNamespace
        gateway("terminate", tls_listener("tls", 8443, "Terminate", "tls.example.com")),
        tls_route("terminated", "terminate", "[tls.example.com]", "plain", 3000),
        # conformance TLSRouteMixedTerminationSameNamespace
        gateway(
            "mixed",
            tls_listener("tls-terminate", 8883, "Terminate", "tls.example.com")
            + tls_listener("tls-passthrough", 8883, "Passthrough", "abc.example.com"),
        ),
        tls_route("mixed-terminate", "mixed", "[tls.example.com]", "plain", 3000),
        tls_route("mixed-passthrough", "mixed", "[abc.example.com]", "tls-abc"),
    ]
    directory = tmp_path_factory.mktemp("tls-route")
    (directory / "config.yaml").write_text("".join(docs))
    return module_turnout(directory)


def _accepted(t: Turnout, route: str) -> bool:
    (parent,) = t.find("TLSRoute", route, "infra")["status"]["parents"]
    conditions = {c["type"]: c["status"] for c in parent["conditions"]}
    return conditions == {"Accepted": "True", "ResolvedRefs": "True"}


def _listeners(t: Turnout, gateway: str) -> dict[str, dict[str, Any]]:
    item = t.find("Gateway", gateway, "infra")
    return {ln["name"]: ln for ln in item["status"]["listeners"]}


def _status(listener: dict[str, Any], condition: str) -> str:
    return str(next(c["status"] for c in listener["conditions"] if c["type"] == condition))


def _greeting(connect: Callable[[], Stream]) -> tuple[dict[str, Any], bytes]:
    """The backend's greeting and the DER certificate the client was served."""
    stream = connect()
    try:
        sock = stream.sock
        assert isinstance(sock, ssl.SSLSocket)
        der = sock.getpeercert(binary_form=True)
        assert der is not None
        return stream.line(), der
    finally:
        stream.close()


def test_passthrough_routes_by_sni(gw: Turnout, ca: trustme.CA, certs: dict[str, Any]) -> None:
    assert _accepted(gw, "abc") and _accepted(gw, "wild")
    listener = _listeners(gw, "passthrough")["tls"]
    assert listener["supportedKinds"] == [
        {"group": "gateway.networking.k8s.io", "kind": "TLSRoute"}
    ]
    assert listener["attachedRoutes"] == 2
    assert _status(listener, "Programmed") == "True"
    address = gw.address("passthrough", "infra")
    for sni, backend, cert in (
        ("abc.example.com", "tls-abc", "abc"),
        ("other.example.com", "tls-wild", "wild"),
    ):
        eventually(lambda s=sni: _greeting(lambda: tls_connect(address, 8443, s, ca)) is not None)
        hello, der = _greeting(lambda s=sni: tls_connect(address, 8443, s, ca))
        # The backend terminated TLS with its own certificate and saw the client's SNI.
        assert (hello["backend"], hello["tls"], hello["sni"]) == (backend, True, sni)
        assert der == certs[cert]["der"]


def test_passthrough_rejects_unmatched_sni(gw: Turnout, ca: trustme.CA) -> None:
    address = gw.address("passthrough", "infra")
    assert rejected(lambda: tls_connect(address, 8443, "non.matching.com", ca))
    assert rejected(lambda: tls_connect(address, 8443, "example.com", ca))


def test_passthrough_stream_echoes(gw: Turnout, ca: trustme.CA) -> None:
    address = gw.address("passthrough", "infra")
    stream = tls_connect(address, 8443, "abc.example.com", ca)
    try:
        assert stream.line()["backend"] == "tls-abc"
        payload = b"x" * 200_000
        stream.sock.sendall(payload)
        assert stream.exactly(len(payload)) == payload
    finally:
        stream.close()


def test_terminate_forwards_plaintext(gw: Turnout, ca: trustme.CA, certs: dict[str, Any]) -> None:
    assert _accepted(gw, "terminated")
    listener = _listeners(gw, "terminate")["tls"]
    assert _status(listener, "Programmed") == "True"
    assert _status(listener, "ResolvedRefs") == "True"
    address = gw.address("terminate", "infra")
    eventually(
        lambda: _greeting(lambda: tls_connect(address, 8443, "tls.example.com", ca))[0] != {}
    )
    stream = tls_connect(address, 8443, "tls.example.com", ca)
    try:
        sock = stream.sock
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.getpeercert(binary_form=True) == certs["gateway"]["der"]
        assert sock.selected_alpn_protocol() is None
        hello = stream.line()
        # The gateway decrypted: the backend speaks plain TCP and saw no SNI.
        assert (hello["backend"], hello["tls"], hello["sni"]) == ("plain", False, None)
        payload = bytes(range(256)) * 1000
        sock.sendall(payload)
        assert stream.exactly(len(payload)) == payload
    finally:
        stream.close()
    assert rejected(lambda: tls_connect(address, 8443, "other.example.com", ca))


def test_mixed_terminate_and_passthrough_on_one_port(
    gw: Turnout, ca: trustme.CA, certs: dict[str, Any]
) -> None:
    listeners = _listeners(gw, "mixed")
    for name in ("tls-terminate", "tls-passthrough"):
        assert _status(listeners[name], "Accepted") == "True"
        assert _status(listeners[name], "Programmed") == "True"
        assert listeners[name]["attachedRoutes"] == 1
    address = gw.address("mixed", "infra")
    eventually(
        lambda: _greeting(lambda: tls_connect(address, 8883, "tls.example.com", ca))[0] != {}
    )
    hello, der = _greeting(lambda: tls_connect(address, 8883, "tls.example.com", ca))
    assert (hello["backend"], hello["tls"], der) == ("plain", False, certs["gateway"]["der"])
    hello, der = _greeting(lambda: tls_connect(address, 8883, "abc.example.com", ca))
    assert (hello["backend"], hello["tls"], hello["sni"]) == ("tls-abc", True, "abc.example.com")
    assert der == certs["abc"]["der"]
    assert rejected(lambda: tls_connect(address, 8883, "nothing.example.com", ca))
