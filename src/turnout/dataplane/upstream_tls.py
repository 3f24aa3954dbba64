"""upstream_tls: TLS the proxy originates to backends (BackendTLSPolicy, GEP-1897).

Place in the pipeline: :mod:`turnout.dataplane.server` asks :class:`UpstreamTLSCache` for
the :class:`UpstreamTLS` of every ``ir.Cluster`` that has ``tls`` when it applies a
configuration; each :class:`turnout.dataplane.upstream.EndpointPool` of that cluster
carries it, and :mod:`turnout.dataplane.upstream` wraps its connections with it.

An ``SSLContext`` is built once per distinct (settings, client certificate) and kept
across configurations while some cluster still uses it, so a reload does not reload
CA bundles or key pairs, and pools keyed by it keep their warm connections.

Verification. The chain must lead to the policy's CAs (or the system's). Then:

* without ``subjectAltNames``, the certificate must match the policy hostname, which
  OpenSSL checks during the handshake (``check_hostname``, RFC 6125 wildcards);
* with ``subjectAltNames``, the hostname is only the SNI; after the handshake the
  certificate must carry one of the listed DNS names or URIs (:meth:`UpstreamTLS.check`).
  OpenSSL can only be told one expected host name, and none for URIs, so this check is
  done here on the verified certificate that ``ssl`` decodes for us.

A failed handshake or check fails the connection attempt; the exchange answers 5xx
and never falls back to plaintext.
"""

from __future__ import annotations

import ssl
from typing import Any

from turnout import ir
from turnout.dataplane.pemfile import pem_file

ALPN_PROTOCOLS = ["http/1.1"]
H2_ALPN_PROTOCOLS = ["h2"]  # gRPC backends (GRPCRoute): HTTP/2 over TLS


class UpstreamTLS:
    """A client context and the names a backend certificate must carry."""

    __slots__ = (
        "_client",
        "_h2_context",
        "_settings",
        "context",
        "hostnames",
        "post_check",
        "sni",
        "uris",
    )

    def __init__(self, settings: ir.UpstreamTLS, client: ir.TLSCertificate | None) -> None:
        self.sni = settings.sni
        self.hostnames = settings.hostnames
        self.uris = settings.uris
        # OpenSSL checks the one name it is given; other SAN sets are checked after.
        self.post_check = bool(settings.uris) or settings.hostnames != (settings.sni,)
        self.context = _client_context(
            settings, client, check_hostname=not self.post_check, alpn=ALPN_PROTOCOLS
        )
        self._settings = settings
        self._client = client
        self._h2_context: ssl.SSLContext | None = None

    @property
    def h2_context(self) -> ssl.SSLContext:
        """The same trust and names, offering ALPN ``h2`` (built on first use)."""
        if self._h2_context is None:
            self._h2_context = _client_context(
                self._settings,
                self._client,
                check_hostname=not self.post_check,
                alpn=H2_ALPN_PROTOCOLS,
            )
        return self._h2_context

    def check(self, peercert: Any) -> str | None:
        """None when the verified certificate carries an accepted SAN, else why not."""
        if not self.post_check:
            return None
        names = peercert.get("subjectAltName", ()) if isinstance(peercert, dict) else ()
        dns = [str(value).lower() for kind, value in names if kind == "DNS"]
        uris = [str(value) for kind, value in names if kind == "URI"]
        if any(uri in self.uris for uri in uris):
            return None
        if any(_dns_matches(name, wanted) for name in dns for wanted in self.hostnames):
            return None
        wanted = [*self.hostnames, *self.uris]
        return (
            f"backend certificate SANs {dns + uris} match none of the accepted "
            f"subjectAltNames {wanted}"
        )


def _dns_matches(presented: str, wanted: str) -> bool:
    """RFC 6125 6.4.3: a certificate's ``*.example.com`` covers one left-most label."""
    if presented == wanted:
        return True
    if not presented.startswith("*.") or wanted.startswith("*."):
        return False
    label, _, rest = wanted.partition(".")
    return bool(label) and rest == presented[2:]


def _client_context(
    settings: ir.UpstreamTLS,
    client: ir.TLSCertificate | None,
    *,
    check_hostname: bool,
    alpn: list[str],
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(alpn)
    context.check_hostname = check_hostname
    if settings.system_roots:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        context.load_verify_locations(cadata=settings.ca_pem)
    if client is not None:
        with pem_file(client.cert_chain) as chain, pem_file(client.private_key) as key:
            context.load_cert_chain(chain, key)
    return context


CacheKey = tuple[ir.UpstreamTLS, str, str]


class UpstreamTLSCache:
    """Contexts by content, kept while a configuration uses them."""

    def __init__(self) -> None:
        self._contexts: dict[CacheKey, UpstreamTLS] = {}
        self._used: dict[CacheKey, UpstreamTLS] = {}

    def get(self, settings: ir.UpstreamTLS, client: ir.TLSCertificate | None) -> UpstreamTLS:
        """The context for ``settings``; raises ssl.SSLError/ValueError if unusable."""
        key = (
            settings,
            client.cert_chain if client else "",
            client.private_key if client else "",
        )
        found = self._used.get(key) or self._contexts.get(key)
        if found is None:
            found = UpstreamTLS(settings, client)
        self._used[key] = found
        return found

    def done(self) -> None:
        """A configuration was built: forget contexts it did not use."""
        self._contexts, self._used = self._used, {}
