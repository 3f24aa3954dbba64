"""BackendTLSPolicy (GEP-1897) through `turnout run`, after the conformance tests
BackendTLSPolicy, BackendTLSPolicySANValidation, BackendTLSPolicyInvalidCACertificateRef,
BackendTLSPolicyInvalidKind and BackendTLSPolicyConflictResolution.

The backends are HTTPS echo servers that report the SNI name they received (and the
client certificate they verified), so each test sees what the gateway sent.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.e2e.conftest import (
    CLASS_YAML,
    Backend,
    Turnout,
    launch_backend,
    request,
    stop_backends,
    wait_for,
)
from tests.e2e.tlsutil import (
    ca_pem,
    config_map_yaml,
    issue,
    launch_tls_backend,
    service_yaml,
    tls_secret_yaml,
)

PORT = 8080
HOST = "abc.example.com"
SPIFFE = "spiffe://abc.example.com/test-identity"

GATEWAY = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: turnout
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw-client, namespace: default}
spec:
  gatewayClassName: turnout
  tls: {backend: {clientCertificateRef: {name: gw-client}}}
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: client-cert, namespace: default}
spec:
  parentRefs: [{name: gw-client}]
  rules:
  - backendRefs: [{name: svc-valid, port: 443}]
"""
)


def policy(
    name: str,
    service: str,
    *,
    hostname: str = HOST,
    section: str | None = None,
    ca: str = "backend-ca",
    ca_kind: str = "ConfigMap",
    sans: str = "",
    created: str = "2025-01-01T00:00:00Z",
) -> str:
    section_line = f", sectionName: {section}" if section else ""
    san_block = f"\n    subjectAltNames: {sans}" if sans else ""
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: {name}, namespace: default, creationTimestamp: "{created}"}}
spec:
  targetRefs: [{{group: "", kind: Service, name: {service}{section_line}}}]
  validation:
    caCertificateRefs: [{{group: "", kind: {ca_kind}, name: {ca}}}]
    hostname: {hostname}{san_block}
"""


# (path, Service, Service port) of each rule of the one route.
RULES = [
    ("/valid", "svc-valid", 443),
    ("/host-mismatch", "svc-host-mismatch", 443),
    ("/cert-mismatch", "svc-cert-mismatch", 443),
    ("/san-dns", "svc-san-dns", 443),
    ("/san-dns-mismatch", "svc-san-dns-mismatch", 443),
    ("/san-uri", "svc-san-uri", 443),
    ("/san-uri-mismatch", "svc-san-uri-mismatch", 443),
    ("/multi-sans", "svc-multi-sans", 443),
    ("/invalid-ca", "svc-invalid-ca", 443),
    ("/invalid-kind", "svc-invalid-kind", 443),
    ("/conflict", "svc-conflict", 443),
    ("/section-443", "svc-two-ports", 443),
    ("/section-8443", "svc-two-ports", 8443),
    ("/mixed-tls", "svc-mixed", 443),
    ("/mixed-plain", "svc-mixed", 80),
]


def route_yaml() -> str:
    text = f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: backend-tls, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{HOST}]
  rules:
"""
    for path, service, port in RULES:
        text += f"""  - matches: [{{path: {{type: Exact, value: {path}}}}}]
    backendRefs: [{{name: {service}, port: {port}}}]
"""
    return text


POLICIES = (
    policy("normative", "svc-valid", section="btls")
    + policy("host-mismatch", "svc-host-mismatch", hostname="mismatch.example.com")
    + policy("cert-mismatch", "svc-cert-mismatch")
    + policy("san-dns", "svc-san-dns", sans=f"[{{type: Hostname, hostname: {HOST}}}]")
    + policy(
        "san-dns-mismatch",
        "svc-san-dns-mismatch",
        sans="[{type: Hostname, hostname: dce.example.com}]",
    )
    # The hostname is only the SNI here: the certificate does not carry it.
    + policy(
        "san-uri",
        "svc-san-uri",
        hostname="sni-only.example.com",
        sans=f"[{{type: URI, uri: {SPIFFE}}}]",
    )
    + policy(
        "san-uri-mismatch",
        "svc-san-uri-mismatch",
        sans="[{type: URI, uri: 'spiffe://def.example.com/test-identity'}]",
    )
    + policy(
        "multi-sans",
        "svc-multi-sans",
        sans=f"[{{type: URI, uri: 'spiffe://def.example.com/x'}}, {{type: Hostname, hostname: {HOST}}}]",
    )
    + policy("nonexistent-ca", "svc-invalid-ca", ca="no-such-configmap")
    + policy("invalid-kind", "svc-invalid-kind", ca_kind="Foo")
    # Conflict: the older policy wins although the newer one sorts first by name.
    + policy(
        "b-older", "svc-conflict", hostname="other.example.com", created="2024-01-01T00:00:00Z"
    )
    + policy("a-newer", "svc-conflict", created="2024-06-01T00:00:00Z")
    # A policy for one port and one for the whole Service do not conflict.
    + policy("with-section", "svc-two-ports", section="https-1", hostname="other.example.com")
    + policy("without-section", "svc-two-ports")
    # Only the TLS port of a Service with a plaintext port too.
    + policy("mixed", "svc-mixed", section="btls")
)


@dataclass
class Env:
    turnout: Turnout
    address: str

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        resp = request(self.address, PORT, path, host=HOST, timeout=10)
        return resp.status, resp.json() if resp.status == 200 else {}

    def ancestor_conditions(self, name: str) -> dict[str, tuple[str, str]]:
        item = self.turnout.find("BackendTLSPolicy", name)
        ancestors = [a for a in item["status"]["ancestors"] if a["ancestorRef"]["name"] == "gw"]
        assert len(ancestors) == 1, item["status"]
        assert ancestors[0]["controllerName"] == "turnout.dev/gateway-controller"
        return {c["type"]: (c["status"], c["reason"]) for c in ancestors[0]["conditions"]}


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, module_turnout: Callable[..., Turnout]
) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("backendtls")
    keys = tmp_path_factory.mktemp("backendtls-keys")
    ca, other_ca, client_ca = trustme.CA(), trustme.CA(), trustme.CA()
    good = issue(ca, dns=[HOST, "other.example.com"], uris=(SPIFFE,))
    started: list[Backend] = []
    try:
        tls = launch_tls_backend(keys, "tls-echo", "default", good, ca, client_ca=client_ca)
        started.append(tls)
        wrong = launch_tls_backend(
            keys, "wrong-ca", "default", issue(other_ca, dns=[HOST]), other_ca
        )
        started.append(wrong)
        plain = launch_backend("plain-echo")
        started.append(plain)
        services = "".join(
            service_yaml(service, "default", [("btls", 443, tls)])
            for service in sorted({s for _, s, _ in RULES} - {"svc-two-ports", "svc-mixed"})
            if service != "svc-cert-mismatch"
        )
        services += service_yaml("svc-cert-mismatch", "default", [("btls", 443, wrong)])
        services += service_yaml(
            "svc-two-ports", "default", [("https-1", 443, tls), ("https-2", 8443, tls)]
        )
        services += service_yaml("svc-mixed", "default", [("btls", 443, tls), ("http", 80, plain)])
        text = GATEWAY + services + route_yaml() + POLICIES
        text += config_map_yaml("backend-ca", "default", ca_pem(ca))
        (directory / "all.yaml").write_text(text)
        # The Gateway's backend client certificate, for the backend that asks for one.
        cert, key = issue(client_ca, dns=["gateway.example.com"])
        (directory / "client.yaml").write_text(tls_secret_yaml("gw-client", "default", cert, key))
        t = module_turnout(directory)
        yield Env(t, t.address("gw"))
    finally:
        stop_backends(started)


def test_reencrypts_with_policy_hostname_as_sni(env: Env) -> None:
    status, echoed = env.get("/valid")
    assert status == 200
    assert echoed["tls"]["sni"] == HOST
    assert env.ancestor_conditions("normative") == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
    }


def test_mismatched_hostname_or_ca_fails(env: Env) -> None:
    for path in ("/host-mismatch", "/cert-mismatch"):
        status, _ = env.get(path)
        assert 500 <= status < 600, path
    # The policies themselves are valid: the failure is the backend's certificate.
    assert env.ancestor_conditions("cert-mismatch")["Accepted"] == ("True", "Accepted")


def test_subject_alt_names_hostname_and_uri(env: Env) -> None:
    for path in ("/san-dns", "/san-uri", "/multi-sans"):
        status, echoed = env.get(path)
        assert status == 200, path
    assert echoed["tls"]["sni"] == HOST
    # With subjectAltNames the hostname is the SNI only, not checked against the cert.
    status, echoed = env.get("/san-uri")
    assert echoed["tls"]["sni"] == "sni-only.example.com"
    for path in ("/san-dns-mismatch", "/san-uri-mismatch"):
        status, _ = env.get(path)
        assert 500 <= status < 600, path


def test_invalid_ca_refs_give_5xx_and_status(env: Env) -> None:
    assert env.get("/invalid-ca")[0] == 500
    assert env.get("/invalid-kind")[0] == 500
    assert env.ancestor_conditions("nonexistent-ca") == {
        "Accepted": ("False", "NoValidCACertificate"),
        "ResolvedRefs": ("False", "InvalidCACertificateRef"),
    }
    assert env.ancestor_conditions("invalid-kind") == {
        "Accepted": ("False", "NoValidCACertificate"),
        "ResolvedRefs": ("False", "InvalidKind"),
    }
    route = env.turnout.find("HTTPRoute", "backend-tls")
    conditions = {c["type"]: c for c in route["status"]["parents"][0]["conditions"]}
    assert conditions["Accepted"]["status"] == "True"
    assert conditions["ResolvedRefs"]["status"] == "False"
    assert "BackendTLSPolicy default/nonexistent-ca" in conditions["ResolvedRefs"]["message"]


def test_conflict_resolved_by_age(env: Env) -> None:
    status, echoed = env.get("/conflict")
    assert status == 200
    assert echoed["tls"]["sni"] == "other.example.com"
    assert env.ancestor_conditions("b-older")["Accepted"] == ("True", "Accepted")
    assert env.ancestor_conditions("a-newer")["Accepted"] == ("False", "Conflicted")


def test_section_name_targets_one_port(env: Env) -> None:
    assert env.get("/section-443")[1]["tls"]["sni"] == "other.example.com"
    assert env.get("/section-8443")[1]["tls"]["sni"] == HOST
    assert env.ancestor_conditions("with-section")["Accepted"] == ("True", "Accepted")
    assert env.ancestor_conditions("without-section")["Accepted"] == ("True", "Accepted")
    status, echoed = env.get("/mixed-tls")
    assert status == 200 and echoed["tls"]["sni"] == HOST
    status, echoed = env.get("/mixed-plain")
    assert status == 200 and "tls" not in echoed and echoed["pod"] == "plain-echo"


def test_gateway_presents_backend_client_certificate(env: Env) -> None:
    # The same backend endpoint, through a Gateway with a client certificate and one
    # without: the TLS connections (and their pools) must not be shared.
    address = env.turnout.address("gw-client")
    for _ in range(2):
        resp = request(address, PORT, "/", host=HOST, timeout=10)
        assert resp.status == 200
        assert resp.json()["tls"]["client_sans"] == ["gateway.example.com"]
        status, echoed = env.get("/valid")
        assert status == 200 and echoed["tls"]["client_sans"] == []
    gateway = env.turnout.find("Gateway", "gw-client")
    conditions = {c["type"]: (c["status"], c["reason"]) for c in gateway["status"]["conditions"]}
    assert conditions["ResolvedRefs"] == ("True", "ResolvedRefs")
    ancestors = env.turnout.find("BackendTLSPolicy", "normative")["status"]["ancestors"]
    assert sorted(a["ancestorRef"]["name"] for a in ancestors) == ["gw", "gw-client"]


REENCRYPT = (
    CLASS_YAML
    + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw-https, namespace: default}
spec:
  gatewayClassName: turnout
  listeners:
  - {name: https, port: 8443, protocol: HTTPS, hostname: https-listener.org,
     tls: {certificateRefs: [{name: listener-cert}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reencrypt, namespace: default}
spec:
  parentRefs: [{name: gw-https}]
  rules:
  - backendRefs: [{name: svc-valid, port: 443}]
"""
    + policy("normative", "svc-valid")
)


def _https_get(address: str, server_ca: trustme.CA) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context()
    server_ca.configure_trust(context)
    with (
        socket.create_connection((address, 8443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="https-listener.org") as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: https-listener.org\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        return response.status, json.loads(body) if response.status == 200 else {}


def test_reencrypt_and_ca_configmap_changes(
    tmp_path: Path, turnout: Callable[..., Turnout]
) -> None:
    """HTTPS in, TLS out; then the CA ConfigMap changes under a running gateway
    (conformance BackendTLSPolicy "Changing the content of a ConfigMap ...")."""
    ca, other_ca, server_ca = trustme.CA(), trustme.CA(), trustme.CA()
    keys = tmp_path / "keys"
    keys.mkdir()
    directory = tmp_path / "config"
    directory.mkdir()
    backend = launch_tls_backend(keys, "tls-echo", "default", issue(ca, dns=[HOST]), ca)
    try:
        listener = server_ca.issue_cert("https-listener.org")
        text = REENCRYPT + service_yaml("svc-valid", "default", [("btls", 443, backend)])
        text += tls_secret_yaml(
            "listener-cert",
            "default",
            listener.cert_chain_pems[0].bytes().decode(),
            listener.private_key_pem.bytes().decode(),
        )
        (directory / "all.yaml").write_text(text)
        (directory / "ca.yaml").write_text(config_map_yaml("backend-ca", "default", ca_pem(ca)))
        t = turnout(directory)
        address = t.address("gw-https")
        status, echoed = _https_get(address, server_ca)
        assert status == 200 and echoed["tls"]["sni"] == HOST

        def write_ca(pem: str) -> None:
            tmp = directory / ".ca.yaml.tmp"
            tmp.write_text(config_map_yaml("backend-ca", "default", pem))
            tmp.rename(directory / "ca.yaml")

        def policy_reason() -> str:
            item = t.find("BackendTLSPolicy", "normative")
            conditions = item["status"]["ancestors"][0]["conditions"]
            return str(next(c["reason"] for c in conditions if c["type"] == "Accepted"))

        # Another (valid) CA: the policy stays Accepted, the backend no longer verifies.
        write_ca(ca_pem(other_ca))
        wait_for(lambda: _https_get(address, server_ca)[0] == 503, what="503 with a wrong CA")
        assert policy_reason() == "Accepted"
        # No CA at all: the policy cannot be used, its requests get 500.
        write_ca("")
        wait_for(lambda: _https_get(address, server_ca)[0] == 500, what="500 without a CA")
        assert policy_reason() == "NoValidCACertificate"
        # Back to the right CA.
        write_ca(ca_pem(ca))
        wait_for(lambda: _https_get(address, server_ca)[0] == 200, what="200 again")
        assert policy_reason() == "Accepted"
    finally:
        stop_backends([backend])
