"""`turnout run` with HTTPS listeners: Secrets, grants, SNI, 421 and rotation.

Key pairs come from trustme at test time; nothing secret is committed.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.e2e.conftest import CLASS_YAML, Backend, Turnout, service_yaml, wait_for

PORT = 8443

CLASS = CLASS_YAML


def secret_yaml(ca: trustme.CA, name: str, *names: str, namespace: str = "default") -> str:
    issued = ca.issue_cert(*names)
    chain = issued.cert_chain_pems[0].bytes().decode()
    key = issued.private_key_pem.bytes().decode()
    return f"""---
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {namespace}}}
type: kubernetes.io/tls
stringData:
  tls.crt: {json.dumps(chain)}
  tls.key: {json.dumps(key)}
"""


def route_yaml(name: str, section: str, backend: str, hostnames: str = "[]") -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: {section}}}]
  hostnames: {hostnames}
  rules:
  - backendRefs: [{{name: {backend}, port: 8080}}]
"""


def _write(directory: Path, name: str, text: str) -> None:
    tmp = directory / f".{name}.tmp"
    tmp.write_text(text)
    tmp.rename(directory / name)


def https_get(
    address: str, sni: str | None, host: str, ca: trustme.CA, path: str = "/"
) -> tuple[int, dict[str, Any], list[str]]:
    """(status, echoed JSON or {}, DNS SANs of the server certificate)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.check_hostname = False
    with (
        socket.create_connection((address, PORT), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=sni) as sock,
    ):
        cert = sock.getpeercert() or {}
        names = [str(v) for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        echoed = json.loads(body) if response.status == 200 else {}
        return response.status, echoed, names


def listener_conditions(t: Turnout, name: str) -> dict[str, tuple[str, str]]:
    gw = t.find("Gateway", "gw")
    for listener in gw["status"]["listeners"]:
        if listener["name"] == name:
            return {c["type"]: (c["status"], c["reason"]) for c in listener["conditions"]}
    raise AssertionError(f"no listener {name}")


def gateway_yaml(listeners: str) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: turnout
  listeners:
{listeners}"""


def test_https_by_sni_and_misdirected_requests(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    """Conformance HTTPRouteHTTPSListenerDetectMisdirectedRequests, through `turnout run`."""
    ca = trustme.CA()
    v1, v2, v3, v4 = (backends(n) for n in ("v1", "v2", "v3", "v4"))
    ref = "tls: {certificateRefs: [{name: shared}]}"
    text = CLASS + gateway_yaml(
        f"""  - {{name: https, port: {PORT}, protocol: HTTPS, {ref}}}
  - {{name: https-with-hostname, port: {PORT}, protocol: HTTPS, hostname: second-example.org, {ref}}}
  - {{name: https-with-wildcard-hostname, port: {PORT}, protocol: HTTPS, hostname: "*.wildcard.org", {ref}}}
  - {{name: https-with-hostname-matching-wildcard, port: {PORT}, protocol: HTTPS, hostname: fourth-example.wildcard.org, {ref}}}
"""
    )
    text += secret_yaml(ca, "shared", "*.org", "*.wildcard.org")
    for name, b in (("v1", v1), ("v2", v2), ("v3", v3), ("v4", v4)):
        text += service_yaml(name, "default", [b])
    text += route_yaml("r1", "https", "v1", "[example.org]")
    text += route_yaml("r2", "https-with-hostname", "v2")
    text += route_yaml("r3", "https-with-wildcard-hostname", "v3")
    text += route_yaml("r4", "https-with-hostname-matching-wildcard", "v4")
    _write(tmp_path, "all.yaml", text)
    t = turnout(tmp_path)
    gw = t.find("Gateway", "gw")
    for listener in gw["status"]["listeners"]:
        conds = {c["type"]: c["status"] for c in listener["conditions"]}
        assert conds == {
            "Accepted": "True",
            "ResolvedRefs": "True",
            "Conflicted": "False",
            "Programmed": "True",
        }, listener["name"]
        assert listener["attachedRoutes"] == 1
    address = t.address("gw")
    cases = [
        ("example.org", "example.org", 200, "v1"),
        ("example.org", "second-example.org", 421, None),
        ("example.org", "unknown-example.org", 404, None),
        ("second-example.org", "second-example.org", 200, "v2"),
        ("second-example.org", "example.org", 421, None),
        ("second-example.org", "unknown-example.org", 421, None),
        ("third-example.wildcard.org", "third-example.wildcard.org", 200, "v3"),
        ("third-example.wildcard.org", "fith-example.wildcard.org", 200, "v3"),
        ("third-example.wildcard.org", "fourth-example.wildcard.org", 421, None),
        ("third-example.wildcard.org", "second-example.org", 421, None),
        ("third-example.wildcard.org", "unknown-example.org", 421, None),
        ("fourth-example.wildcard.org", "fourth-example.wildcard.org", 200, "v4"),
        ("fourth-example.wildcard.org", "fith-example.wildcard.org", 421, None),
        ("unknown-example.org", "example.org", 200, "v1"),
        ("unknown-example.org", "unknown-example.org", 404, None),
    ]
    for sni, host, status, backend in cases:
        got, echoed, _ = https_get(address, sni, host, ca, "/detect-misdirected-requests")
        assert got == status, (sni, host)
        if backend is not None:
            assert echoed["pod"] == backend, (sni, host)
            assert echoed["headers"]["X-Forwarded-Proto"] == ["https"]


def test_several_certificates_and_invalid_ones(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    ca = trustme.CA()
    echo = backends("echo")
    text = CLASS + gateway_yaml(
        f"""  - name: multi
    port: {PORT}
    protocol: HTTPS
    hostname: "*.example.com"
    tls: {{certificateRefs: [{{name: wildcard}}, {{name: foo}}]}}
  - {{name: broken, port: {PORT}, protocol: HTTPS, hostname: broken.test, tls: {{certificateRefs: [{{name: malformed}}]}}}}
"""
    )
    text += secret_yaml(ca, "wildcard", "*.example.com")
    text += secret_yaml(ca, "foo", "foo.example.com")
    text += """---
apiVersion: v1
kind: Secret
metadata: {name: malformed, namespace: default}
type: kubernetes.io/tls
data: {tls.crt: SGVsbG8gd29ybGQK, tls.key: SGVsbG8gd29ybGQK}
"""
    text += service_yaml("echo", "default", [echo])
    text += route_yaml("r", "multi", "echo")
    text += route_yaml("b", "broken", "echo")
    _write(tmp_path, "all.yaml", text)
    t = turnout(tmp_path)
    assert listener_conditions(t, "multi")["Programmed"] == ("True", "Programmed")
    broken = listener_conditions(t, "broken")
    assert broken["ResolvedRefs"] == ("False", "InvalidCertificateRef")
    assert broken["Programmed"][0] == "False"
    gw = t.find("Gateway", "gw")
    attached = {ln["name"]: ln["attachedRoutes"] for ln in gw["status"]["listeners"]}
    assert attached == {"multi": 1, "broken": 1}
    address = t.address("gw")
    assert https_get(address, "foo.example.com", "foo.example.com", ca)[2] == ["foo.example.com"]
    assert https_get(address, "bar.example.com", "bar.example.com", ca)[2] == ["*.example.com"]
    with pytest.raises(ssl.SSLError):  # the broken listener has no socket share
        https_get(address, "broken.test", "broken.test", ca)


def test_cross_namespace_secret_needs_grant(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    ca = trustme.CA()
    echo = backends("echo")
    text = CLASS + gateway_yaml(
        f"""  - name: https
    port: {PORT}
    protocol: HTTPS
    tls: {{certificateRefs: [{{name: cert, namespace: certs}}]}}
"""
    )
    text += secret_yaml(ca, "cert", "secure.example.com", namespace="certs")
    text += service_yaml("echo", "default", [echo]) + route_yaml("r", "https", "echo")
    _write(tmp_path, "all.yaml", text)
    t = turnout(tmp_path)
    conds = listener_conditions(t, "https")
    assert conds["ResolvedRefs"] == ("False", "RefNotPermitted")
    assert conds["Programmed"][0] == "False"
    with pytest.raises(OSError):  # nothing listens: the listener is not programmed
        https_get(t.address("gw"), "secure.example.com", "secure.example.com", ca)
    _write(
        tmp_path,
        "grant.yaml",
        """---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: gateways, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: default}]
  to: [{group: "", kind: Secret, name: cert}]
""",
    )
    wait_for(
        lambda: listener_conditions(t, "https")["Programmed"] == ("True", "Programmed"),
        what="the granted listener to be programmed",
    )
    status, echoed, names = https_get(t.address("gw"), "secure.example.com", "x", ca)
    assert (status, echoed["pod"], names) == (200, "echo", ["secure.example.com"])


def test_certificate_rotation_under_load(
    tmp_path: Path, backends: Callable[..., Backend], turnout: Callable[..., Turnout]
) -> None:
    ca = trustme.CA()
    echo = backends("echo")
    base = CLASS + gateway_yaml(
        f"""  - {{name: https, port: {PORT}, protocol: HTTPS, tls: {{certificateRefs: [{{name: cert}}]}}}}
"""
    )
    base += service_yaml("echo", "default", [echo]) + route_yaml("r", "https", "echo")
    _write(tmp_path, "all.yaml", base)
    _write(tmp_path, "secret.yaml", secret_yaml(ca, "cert", "rotate.example.com", "gen-0.test"))
    t = turnout(tmp_path)
    address = t.address("gw")

    failures: list[str] = []
    seen: set[str] = set()
    count = 0
    stop = threading.Event()

    def hammer() -> None:
        nonlocal count
        while not stop.is_set():
            try:
                status, _, names = https_get(address, "rotate.example.com", "r.test", ca)
                if status != 200:
                    failures.append(f"status {status}")
                seen.update(n for n in names if n.startswith("gen-"))
                count += 1
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        # The first certificate must have been served before it is rotated away (under
        # load the threads' first handshakes can take longer than a fixed sleep).
        wait_for(lambda: "gen-0.test" in seen, what="certificate gen-0.test to be served")
        for generation in range(1, 4):
            # Some requests under the current certificate before rotating it again: a
            # count, not a time, so a loaded machine only makes the test slower.
            before = count
            wait_for(lambda before=before: count >= before + 5, what="requests under load")
            name = f"gen-{generation}.test"
            _write(tmp_path, "secret.yaml", secret_yaml(ca, "cert", "rotate.example.com", name))
            wait_for(lambda name=name: name in seen, what=f"certificate {name} to be served")
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert failures == []
    assert {"gen-0.test", "gen-1.test", "gen-2.test", "gen-3.test"} <= seen
