"""The world a conformance test runs in: manifests, echo backends, TLS secrets, turnout.

The suite's base manifests and a test's own YAML are written into a fresh directory with
{GATEWAY_CLASS_NAME} replaced, the GatewayClass is added, every Deployment gets a
:mod:`turnout.demo.echo` process (its pod name starts with the Deployment's name, as the
suite checks), every Service gets an EndpointSlice that points at the echo processes
its selector picks, and the Secrets the suite would create programmatically are made
with ``cryptography``. Then ``turnout run -f DIR --admin ADDR`` is started on it.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import json
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from suite import show

CLASS = "turnout-conformance"
CONTROLLER = "turnout.dev/gateway-controller"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_yaml(text: str) -> list[dict[str, Any]]:
    text = text.replace("{GATEWAY_CLASS_NAME}", CLASS).replace(
        "{GATEWAY_CONTROLLER_NAME}", CONTROLLER
    )
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _cert(hosts: list[str]) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    sans: list[x509.GeneralName] = []
    for h in hosts:
        if h.startswith("spiffe://"):
            sans.append(x509.UniformResourceIdentifier(h))
        else:
            sans.append(x509.DNSName(h))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


# The Secrets and ConfigMaps suite.go creates in code rather than in base/manifests.yaml.
SECRETS = [
    ("gateway-conformance-web-backend", "certificate", ["*"]),
    (
        "gateway-conformance-infra",
        "tls-validity-checks-certificate",
        ["*", "*.org", "*.wildcard.org"],
    ),
    (
        "gateway-conformance-infra",
        "tls-checks-certificate",
        ["abc.example.com", "spiffe://abc.example.com/test-identity", "other.example.com"],
    ),
    ("gateway-conformance-infra", "tls-passthrough-checks-certificate", ["abc.example.com"]),
    ("gateway-conformance-app-backend", "tls-passthrough-checks-certificate", ["abc.example.com"]),
    ("gateway-conformance-infra", "tls-terminate-checks-certificate", ["tls.example.com"]),
]
CONFIGMAPS = [
    ("gateway-conformance-web-backend", "web-backend-cm"),
    ("gateway-conformance-infra", "tls-validity-checks-ca-certificate"),
    ("gateway-conformance-infra", "tls-validity-checks-per-port-ca-certificate"),
    ("gateway-conformance-infra", "tls-checks-ca-certificate"),
    ("gateway-conformance-infra", "mismatch-ca-certificate"),
]


def secret_docs() -> list[dict[str, Any]]:
    import base64

    docs: list[dict[str, Any]] = []
    for ns, name, hosts in SECRETS:
        crt, key = _cert(hosts)
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": name, "namespace": ns},
                "data": {
                    "tls.crt": base64.b64encode(crt).decode(),
                    "tls.key": base64.b64encode(key).decode(),
                },
            }
        )
    for ns, name in CONFIGMAPS:
        crt, _ = _cert(["ca.example.com"])
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns},
                "data": {"ca.crt": crt.decode()},
            }
        )
    return docs


class Backends:
    """One echo process per Deployment (namespace, name), started on first use."""

    def __init__(self) -> None:
        self.procs: dict[tuple[str, str], tuple[str, int, subprocess.Popen[bytes]]] = {}

    def pod(self, namespace: str, deployment: str) -> tuple[str, int]:
        key = (namespace, deployment)
        if key not in self.procs:
            port = free_port()
            pod = f"{deployment}-{secrets.token_hex(3)}"
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "turnout.demo.echo",
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--name",
                    pod,
                    "--namespace",
                    namespace,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.procs[key] = (pod, port, proc)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.2),
                ):
                    break
                time.sleep(0.05)
        pod, port, _ = self.procs[key]
        return pod, port

    def stop(self) -> None:
        for _, _, proc in self.procs.values():
            proc.terminate()
        for _, _, proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def endpoint_slices(docs: list[dict[str, Any]], backends: Backends) -> list[dict[str, Any]]:
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    out = []
    for svc in (d for d in docs if d.get("kind") == "Service"):
        ns = svc["metadata"].get("namespace", "default")
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector:
            continue
        picked = []
        for dep in deployments:
            if dep["metadata"].get("namespace", "default") != ns:
                continue
            labels = (((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
                "labels"
            ) or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                picked.append(dep["metadata"]["name"])
        for i, dep_name in enumerate(picked):
            _, port = backends.pod(ns, dep_name)
            ports = []
            for p in svc["spec"].get("ports", []):
                entry: dict[str, Any] = {"port": port, "protocol": "TCP"}
                if p.get("name"):
                    entry["name"] = p["name"]
                if p.get("appProtocol"):
                    entry["appProtocol"] = p["appProtocol"]
                ports.append(entry)
            out.append(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": f"{svc['metadata']['name']}-{i}",
                        "namespace": ns,
                        "labels": {"kubernetes.io/service-name": svc["metadata"]["name"]},
                    },
                    "addressType": "IPv4",
                    "ports": ports,
                    "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
                }
            )
    return out


class Turnout:
    def __init__(self, directory: Path, pool: str, log: Path) -> None:
        self.admin = free_port()
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "turnout",
                    "run",
                    "-f",
                    str(directory),
                    "--admin",
                    f"127.0.0.1:{self.admin}",
                    "--address-pool",
                    pool,
                    "--workers",
                    "0",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, body
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.get("/readyz")[0] == 200:
                    return True
            time.sleep(0.1)
        return False

    def status(self) -> dict[str, Any]:
        _code, body = self.get("/status")
        data: dict[str, Any] = json.loads(body)
        return data

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()


def write_world(
    directory: Path, test_manifests: list[str], backends: Backends, tls_docs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Write base + test manifests, the class, slices and secrets; return the test's own docs."""
    base = load_yaml(show("conformance/base/manifests.yaml"))
    own: list[dict[str, Any]] = []
    for path in test_manifests:
        own += load_yaml(show(f"conformance/{path}"))
    cls = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": CLASS},
        "spec": {"controllerName": CONTROLLER},
    }
    slices = endpoint_slices(base + own, backends)
    directory.mkdir(parents=True, exist_ok=True)
    for name, docs in (
        ("0-class", [cls]),
        ("1-base", base),
        ("2-test", own),
        ("3-slices", slices),
        ("4-tls", tls_docs),
    ):
        (directory / f"{name}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return base + own


def address_pool(n: int) -> str:
    net = ipaddress.ip_network(f"127.77.{n % 256}.0/24")
    return str(net)
