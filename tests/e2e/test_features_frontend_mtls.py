"""Frontend client certificate validation (Gateway spec.tls.frontend, GEP-91) through
`turnout run`, after the conformance tests GatewayFrontendClientCertificateValidation,
GatewayFrontendClientCertificateValidationInsecureFallback,
GatewayInvalidFrontendClientCertificateValidation and
GatewayFrontendInvalidDefaultClientCertificateValidation.
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

from tests.e2e.conftest import CLASS_YAML, Backend, Turnout, request, service_yaml
from tests.e2e.tlsutil import ca_pem, config_map_yaml, tls_secret_yaml

HTTPS = 8443
PER_PORT = 9443
HTTP = 8080


def gateway_yaml(name: str, frontend: str, *, namespace: str = "default") -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  gatewayClassName: turnout
  tls:
    frontend: {frontend}
  listeners:
  - name: https
    port: {HTTPS}
    protocol: HTTPS
    hostname: example.org
    tls: {{certificateRefs: [{{name: server-cert}}]}}
  - name: https-per-port
    port: {PER_PORT}
    protocol: HTTPS
    hostname: second-example.org
    tls: {{certificateRefs: [{{name: server-cert}}]}}
  - {{name: http, port: {HTTP}, protocol: HTTP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}-route, namespace: {namespace}}}
spec:
  parentRefs: [{{name: {name}}}]
  rules:
  - backendRefs: [{{name: echo, port: 8080}}]
"""


def validation(ca: str, mode: str = "AllowValidOnly", kind: str = "ConfigMap") -> str:
    return f"{{validation: {{mode: {mode}, caCertificateRefs: [{{kind: {kind}, name: {ca}, group: ''}}]}}}}"


GATEWAYS = (
    gateway_yaml(
        "mtls",
        f"{{default: {validation('client-ca')}, "
        f"perPort: [{{port: {PER_PORT}, tls: {validation('per-port-ca')}}}]}}",
    )
    + gateway_yaml(
        "insecure",
        f"{{default: {validation('client-ca', 'AllowInsecureFallback')}, "
        f"perPort: [{{port: {PER_PORT}, tls: {validation('per-port-ca', 'AllowInsecureFallback')}}}]}}",
    )
    # The default names a missing ConfigMap; the per-port one a kind turnout cannot read.
    + gateway_yaml(
        "invalid",
        f"{{default: {validation('no-such-ca')}, "
        f"perPort: [{{port: {PER_PORT}, tls: {validation('client-ca', kind='Foo')}}}]}}",
    )
)


@dataclass
class Env:
    turnout: Turnout
    server_ca: trustme.CA
    client: trustme.LeafCert
    per_port_client: trustme.LeafCert

    def get(
        self, gateway: str, port: int, host: str, cert: trustme.LeafCert | None
    ) -> tuple[int, dict[str, Any]]:
        """(status, echoed JSON); raises ssl.SSLError/OSError when the handshake fails."""
        context = ssl.create_default_context()
        self.server_ca.configure_trust(context)
        if cert is not None:
            cert.configure_cert(context)
        address = self.turnout.address(gateway)
        with (
            socket.create_connection((address, port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as sock,
        ):
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = response.read()
            return response.status, json.loads(body) if response.status == 200 else {}

    def refused(self, gateway: str, port: int, host: str, cert: trustme.LeafCert | None) -> bool:
        try:
            self.get(gateway, port, host, cert)
        except (ssl.SSLError, OSError, http.client.HTTPException):
            return True
        return False

    def listener(self, gateway: str, name: str) -> dict[str, tuple[str, str]]:
        item = self.turnout.find("Gateway", gateway)
        (found,) = [ln for ln in item["status"]["listeners"] if ln["name"] == name]
        return {c["type"]: (c["status"], c["reason"]) for c in found["conditions"]}


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    module_backends: Callable[..., Backend],
    module_turnout: Callable[..., Turnout],
) -> Iterator[Env]:
    directory: Path = tmp_path_factory.mktemp("frontend-mtls")
    server_ca, client_ca, per_port_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("example.org", "second-example.org")
    text = CLASS_YAML + GATEWAYS + service_yaml("echo", "default", [module_backends("echo")])
    text += tls_secret_yaml(
        "server-cert",
        "default",
        server.cert_chain_pems[0].bytes().decode(),
        server.private_key_pem.bytes().decode(),
    )
    text += config_map_yaml("client-ca", "default", ca_pem(client_ca))
    text += config_map_yaml("per-port-ca", "default", ca_pem(per_port_ca))
    (directory / "all.yaml").write_text(text)
    t = module_turnout(directory)
    yield Env(t, server_ca, client_ca.issue_cert("client"), per_port_ca.issue_cert("per-port"))


def test_default_and_per_port_validation(env: Env) -> None:
    assert env.get("mtls", HTTPS, "example.org", env.client)[0] == 200
    assert env.refused("mtls", HTTPS, "example.org", env.per_port_client)
    assert env.refused("mtls", HTTPS, "example.org", None)
    assert env.get("mtls", PER_PORT, "second-example.org", env.per_port_client)[0] == 200
    assert env.refused("mtls", PER_PORT, "second-example.org", env.client)
    assert env.refused("mtls", PER_PORT, "second-example.org", None)
    assert env.listener("mtls", "https")["Accepted"] == ("True", "Accepted")
    gateway = env.turnout.find("Gateway", "mtls")
    types = [c["type"] for c in gateway["status"]["conditions"]]
    assert "InsecureFrontendValidationMode" not in types


def test_insecure_fallback_accepts_any_client(env: Env) -> None:
    for port, host in ((HTTPS, "example.org"), (PER_PORT, "second-example.org")):
        for cert in (env.client, env.per_port_client, None):
            assert env.get("insecure", port, host, cert)[0] == 200
    gateway = env.turnout.find("Gateway", "insecure")
    conditions = {c["type"]: c for c in gateway["status"]["conditions"]}
    insecure = conditions["InsecureFrontendValidationMode"]
    assert (insecure["status"], insecure["reason"]) == ("True", "ConfigurationChanged")


def test_invalid_ca_refs_reject_only_https_listeners(env: Env) -> None:
    assert env.listener("invalid", "https") == {
        "Accepted": ("False", "NoValidCACertificate"),
        "ResolvedRefs": ("False", "InvalidCACertificateRef"),
        "Conflicted": ("False", "NoConflicts"),
        "Programmed": ("False", "Invalid"),
    }
    per_port = env.listener("invalid", "https-per-port")
    assert per_port["Accepted"] == ("False", "NoValidCACertificate")
    assert per_port["ResolvedRefs"] == ("False", "InvalidCACertificateKind")
    assert env.listener("invalid", "http")["Programmed"] == ("True", "Programmed")
    address = env.turnout.address("invalid")
    assert request(address, HTTP, "/", host="example.org").status == 200
    assert env.refused("invalid", HTTPS, "example.org", env.client)
