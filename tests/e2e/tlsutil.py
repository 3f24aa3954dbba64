"""Certificates and TLS echo backends for the backend/frontend TLS e2e tests.

Key pairs are made at test time (trustme CAs; leaf certificates with URI SANs are
signed here with ``cryptography``, which trustme cannot do) and written to the test's
temporary directory only: nothing secret is committed.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import Backend, free_port, wait_for


def issue(ca: trustme.CA, *, dns: list[str], uris: tuple[str, ...] = ()) -> tuple[str, str]:
    """(certificate chain PEM, private key PEM) for a leaf signed by ``ca``."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (dns or ["leaf"])[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem


def ca_pem(ca: trustme.CA) -> str:
    return ca.cert_pem.bytes().decode()


def config_map_yaml(name: str, namespace: str, pem: str) -> str:
    return f"""---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {namespace}}}
data:
  ca.crt: {json.dumps(pem)}
"""


def tls_secret_yaml(name: str, namespace: str, cert: str, key: str) -> str:
    return f"""---
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {namespace}}}
type: kubernetes.io/tls
stringData:
  tls.crt: {json.dumps(cert)}
  tls.key: {json.dumps(key)}
"""


def launch_tls_backend(
    directory: Path,
    name: str,
    namespace: str,
    cert: tuple[str, str],
    trust: trustme.CA,
    client_ca: trustme.CA | None = None,
) -> Backend:
    """An HTTPS echo backend; ``trust`` is the CA that signed ``cert`` (for the probe)."""
    (directory / f"{name}.crt").write_text(cert[0])
    (directory / f"{name}.key").write_text(cert[1])
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "turnout.demo.echo",
        "--listen",
        f"127.0.0.1:{port}",
        "--name",
        name,
        "--namespace",
        namespace,
        "--tls-cert",
        str(directory / f"{name}.crt"),
        "--tls-key",
        str(directory / f"{name}.key"),
    ]
    if client_ca is not None:
        (directory / f"{name}-client-ca.crt").write_text(ca_pem(client_ca))
        args += ["--tls-client-ca", str(directory / f"{name}-client-ca.crt")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = ssl.create_default_context()
    trust.configure_trust(context)
    context.check_hostname = False

    def up() -> bool:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
            context.wrap_socket(raw),
        ):
            return True

    try:
        wait_for(up, what=f"TLS backend {name}")
    except AssertionError:
        proc.kill()
        raise
    return Backend(name, namespace, port, proc)


def service_yaml(name: str, namespace: str, ports: list[tuple[str, int, Backend]]) -> str:
    """A Service with named ports, each backed by one local backend (EndpointSlice)."""
    service_ports = ", ".join(f"{{name: {n}, port: {p}, protocol: TCP}}" for n, p, _ in ports)
    text = f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  ports: [{service_ports}]
"""
    for i, (port_name, _, backend) in enumerate(ports):
        text += f"""---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-{i}
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: {port_name}, port: {backend.port}, protocol: TCP}}]
endpoints:
  - addresses: ["{backend.address}"]
"""
    return text
