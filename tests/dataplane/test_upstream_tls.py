"""Upstream TLS pieces that need no network: SAN checks and redaction of the Gateway's
backend client key (the e2e tests in tests/e2e/test_features_backend_tls.py cover the
handshakes)."""

from __future__ import annotations

import json

import pytest
import trustme

from turnout import ir
from turnout.dataplane.upstream_tls import UpstreamTLS, _dns_matches


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def settings(
    ca: trustme.CA, hostnames: tuple[str, ...], uris: tuple[str, ...] = ()
) -> ir.UpstreamTLS:
    return ir.UpstreamTLS(
        policy="default/p",
        sni="abc.example.com",
        ca_pem=ca.cert_pem.bytes().decode(),
        hostnames=hostnames,
        uris=uris,
    )


def test_hostname_only_is_checked_by_openssl(ca: trustme.CA) -> None:
    tls = UpstreamTLS(settings(ca, ("abc.example.com",)), None)
    assert tls.context.check_hostname and not tls.post_check
    assert tls.check({}) is None


def test_subject_alt_names_checked_after_the_handshake(ca: trustme.CA) -> None:
    tls = UpstreamTLS(settings(ca, ("def.example.com",), ("spiffe://x/y",)), None)
    assert not tls.context.check_hostname and tls.post_check
    assert tls.check({"subjectAltName": (("URI", "spiffe://x/y"),)}) is None
    assert tls.check({"subjectAltName": (("DNS", "*.example.com"),)}) is None
    problem = tls.check({"subjectAltName": (("DNS", "abc.example.com"), ("URI", "spiffe://x/z"))})
    assert problem is not None and "spiffe://x/z" in problem
    assert tls.check({}) is not None


@pytest.mark.parametrize(
    ("presented", "wanted", "ok"),
    [
        ("a.example.com", "a.example.com", True),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", "example.com", False),
        ("a.example.com", "*.example.com", False),
        ("*.example.com", "*.example.com", True),
    ],
)
def test_dns_matches(presented: str, wanted: str, ok: bool) -> None:
    assert _dns_matches(presented, wanted) is ok


def test_json_redacts_backend_client_key(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("gateway.example.com")
    client = ir.TLSCertificate(
        name="secret/default/client",
        cert_chain=leaf.cert_chain_pems[0].bytes().decode(),
        private_key=leaf.private_key_pem.bytes().decode(),
    )
    config = ir.Config(
        gateways=(ir.Gateway("default/gw", "127.0.0.1", (), backend_client_certificate=client),)
    )
    dumped = ir.to_json(config)
    assert b"PRIVATE KEY" not in dumped
    gateway = json.loads(dumped)["gateways"][0]
    assert gateway["backend_client_certificate"]["private_key"] == "<redacted>"
    assert ir.from_msgpack(ir.to_msgpack(config)) == config
