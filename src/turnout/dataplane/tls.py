"""tls: TLS termination for HTTPS listeners -- certificates by SNI, requests by Host.

Theory of operation. All HTTPS listeners on one (address, port) share one socket. The
socket's server ``SSLContext`` carries no certificate: its SNI callback reads the
socket's *current* :class:`TLSSocketTable` (swapped by ``DataPlane.apply`` like any
routing table) and moves the handshake to a per-certificate context:

1. the listener is the most specific match of the SNI name among the listeners'
   hostnames (exact, longest wildcard, then the listener without hostname); a client
   without SNI gets the listener without hostname;
2. within it, the certificate whose names match the SNI best, else its first one;
3. no listener matches: the handshake fails (alert ``unrecognized_name``).

Each per-certificate context records its listener's name, so after the handshake the
connection knows which listener SNI chose (``ssl_object.context``). Requests are then
routed within that listener only, and the Host header must belong to it (Gateway API
Listener.hostname, GEP-3567 / ``GatewayHTTPSListenerDetectMisdirectedRequests``): the
most specific listener for the Host is computed over every HTTPS listener of the socket;
if it is another listener the answer is **421 Misdirected Request**, if there is none,
**404**.

Rotation: a new configuration builds new contexts (loaded key pairs are cached by
content, so unchanged certificates are not reloaded) and a new table; swapping the
table is one reference assignment, so the next handshake sees the new certificate while
open connections keep the session they negotiated. The listening socket stays open.

Client certificates (Gateway ``spec.tls.frontend``, GEP-91). Whether a client is asked
for a certificate is decided when OpenSSL creates the connection, from the *socket's*
context (``SSL_set_SSL_CTX`` in the SNI callback does not change it), while the chain
is verified against the CA store of the per-certificate context SNI chose. So the CAs
are loaded into the per-certificate contexts, and ``DataPlane.apply`` sets the socket
context's ``verify_mode`` from the table it swaps in (:func:`apply_verify_mode`):
frontend validation is per port, and a socket is one port of one Gateway.
``AllowValidOnly`` requires a certificate that verifies (else the handshake fails).
``AllowInsecureFallback`` accepts every client: Python's ``ssl`` cannot ask for a
certificate and then ignore a failed verification (no verify callback), so in that
mode no certificate is requested at all; turnout does not forward client certificate
details to backends, so nothing is lost for routing.

Invariants: contexts are TLS 1.2+, ALPN ``h2`` then ``http/1.1`` (a connection that
selects ``h2`` is handed to :mod:`turnout.dataplane.http2`, which routes with the same
``lookup``, so SNI and Host checks are the same for both); private
keys are only ever handed to OpenSSL through an anonymous in-memory file (``memfd``)
where the platform has one, else a private temporary file removed right after loading.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import cast

from turnout import ir
from turnout.dataplane.http1 import ClientConnection, SocketState
from turnout.dataplane.pemfile import pem_file
from turnout.dataplane.router import (
    HostMap,
    ListenerTable,
    Rule,
    SocketKey,
    SocketTable,
    Target,
    VirtualHostTable,
    normalize_host,
)
from turnout.dataplane.sslcontext import CertificateContext

ALPN_PROTOCOLS = ["h2", "http/1.1"]  # h2: turnout.dataplane.http2 serves the connection
_CACHE_LIMIT = 4096


def _always(_path: bytes) -> bool:
    return True


# Answer of every request whose Host belongs to another listener than the SNI's.
MISDIRECTED = VirtualHostTable((Rule("misdirected", _always, (), [(1, Target(status=421))]),))


def _base_settings(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(ALPN_PROTOCOLS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE


def load_certificate(
    listener: str,
    certificate: ir.TLSCertificate,
    client_validation: ir.ClientValidation | None = None,
) -> CertificateContext:
    """A context serving ``certificate`` for ``listener`` (and trusting the client CAs
    of ``AllowValidOnly`` validation); raises ssl.SSLError, OSError or ValueError."""
    context = CertificateContext(ssl.PROTOCOL_TLS_SERVER)
    context.listener = listener
    _base_settings(context)
    with pem_file(certificate.cert_chain) as chain, pem_file(certificate.private_key) as key:
        context.load_cert_chain(chain, key)
    if requires_client_certificate(client_validation):
        assert client_validation is not None
        context.load_verify_locations(cadata=client_validation.ca_pem)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def requires_client_certificate(validation: ir.ClientValidation | None) -> bool:
    return validation is not None and validation.mode == "AllowValidOnly"


def apply_verify_mode(context: ssl.SSLContext, table: SocketTable) -> None:
    """Ask new connections of a TLS socket for client certificates if its table says so."""
    wanted = table.verify_mode if isinstance(table, TLSSocketTable) else ssl.CERT_NONE
    if context.verify_mode != wanted:
        context.verify_mode = wanted


class TLSListener:
    """The certificates of one HTTPS listener, by the names they serve."""

    __slots__ = ("by_name", "default", "name")

    def __init__(self, name: str, contexts: list[tuple[ir.TLSCertificate, CertificateContext]]):
        self.name = name
        self.by_name: HostMap[CertificateContext] = HostMap()
        for certificate, context in contexts:
            for hostname in certificate.hostnames:
                self.by_name.add(hostname, context)
        self.default = contexts[0][1]

    def context_for(self, server_name: bytes) -> CertificateContext:
        return self.by_name.get(server_name) or self.default


class TLSSocketTable(SocketTable):
    """All HTTPS listeners sharing one (address, port): SNI choice and Host checks.

    ``listeners`` (inherited) maps listener hostnames to routing tables, ``tls`` to
    their certificates; both are filled in the same order, so for any name both pick
    the same listener.
    """

    __slots__ = ("_routes", "listener_names", "tls", "verify_mode")

    def __init__(self) -> None:
        super().__init__()
        self.tls: HostMap[TLSListener] = HostMap()
        self.listener_names: list[str] = []
        # CERT_REQUIRED when the port's listeners validate client certificates.
        self.verify_mode = ssl.CERT_NONE
        self._routes: dict[tuple[str, bytes], VirtualHostTable | None] = {}

    def add(self, listener: ir.Listener, table: ListenerTable, tls: TLSListener) -> None:
        if listener.tls is not None and requires_client_certificate(listener.tls.client_validation):
            self.verify_mode = ssl.CERT_REQUIRED
        self.listeners.add(listener.hostname, table)
        self.tls.add(listener.hostname, tls)
        self.listener_names.append(listener.name)

    def context_for(self, server_name: str | None) -> CertificateContext | None:
        """The context a handshake with this SNI name continues with (None: refuse)."""
        if server_name is None:
            listener = self.tls.default
            name = b""
        else:
            name = server_name.lower().encode("ascii", "replace")
            listener = self.tls.get(name)
        if listener is None:
            return None
        return listener.context_for(name)

    def lookup_for(self, listener: str, raw_host: bytes) -> VirtualHostTable | None:
        """Virtual host for a request on a connection whose SNI chose ``listener``."""
        key = (listener, raw_host)
        cache = self._routes
        if key in cache:
            return cache[key]
        host = normalize_host(raw_host)
        best = self.listeners.get(host)
        if best is None:
            found = None  # no listener on this port serves the Host: 404
        elif best.name != listener:
            found = MISDIRECTED
        else:
            found = best.virtual_hosts.get(host)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = found
        return found


class TLSClientConnection(ClientConnection):
    """An HTTP/1.1 connection over TLS: routes within the listener SNI chose."""

    scheme = b"https"

    def __init__(self, state: SocketState) -> None:
        super().__init__(state)
        self.listener = ""  # set once the handshake is done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        context = getattr(ssl_object, "context", None)
        if isinstance(context, CertificateContext):
            self.listener = context.listener
        super().connection_made(transport)
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self.hand_over_to_h2(b"")

    def lookup(self, raw_host: bytes) -> VirtualHostTable | None:
        table = self.state.table
        if isinstance(table, TLSSocketTable):
            return table.lookup_for(self.listener, raw_host)
        return table.lookup(raw_host)  # the socket is closing: an empty table


def server_context(state: SocketState) -> ssl.SSLContext:
    """The context a TLS socket is created with; certificates come from ``state.table``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _base_settings(context)

    def choose(ssl_object: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> int | None:
        # Must not raise: OpenSSL would only see an internal error.
        try:
            table = state.table
            chosen = table.context_for(server_name) if isinstance(table, TLSSocketTable) else None
            if chosen is None:
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            ssl_object.context = chosen
        except Exception:
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None

    context.sni_callback = cast("ssl._SNICallback", choose)  # type: ignore[name-defined]
    return context


# (listener, certificate chain, private key, client validation)
CacheKey = tuple[str, str, str, ir.ClientValidation | None]


class CertificateCache:
    """Loaded contexts by (listener, key pair), kept across configurations."""

    def __init__(self) -> None:
        self._contexts: dict[CacheKey, CertificateContext] = {}

    def build(
        self, config: ir.Config, compiled: Mapping[str, ListenerTable]
    ) -> tuple[dict[SocketKey, TLSSocketTable], dict[str, str]]:
        """TLS socket tables of ``config``'s HTTPS listeners, and per-listener errors.

        ``compiled`` holds the routing table of every HTTPS listener by name.
        """
        sockets: dict[SocketKey, TLSSocketTable] = {}
        errors: dict[str, str] = {}
        used: dict[CacheKey, CertificateContext] = {}
        for gateway in config.gateways:
            for listener in gateway.listeners:
                if listener.protocol != "HTTPS":
                    continue
                loaded = self._load(listener, used, errors)
                table = compiled.get(listener.name)
                if not loaded or table is None:
                    continue
                key = (listener.address, listener.port)
                socket_table = sockets.get(key)
                if socket_table is None:
                    socket_table = sockets[key] = TLSSocketTable()
                socket_table.add(listener, table, TLSListener(listener.name, loaded))
        self._contexts = used
        return sockets, errors

    def _load(
        self,
        listener: ir.Listener,
        used: dict[CacheKey, CertificateContext],
        errors: dict[str, str],
    ) -> list[tuple[ir.TLSCertificate, CertificateContext]]:
        loaded = []
        problems = []
        certificates = listener.tls.certificates if listener.tls is not None else ()
        validation = listener.tls.client_validation if listener.tls is not None else None
        for certificate in certificates:
            key = (listener.name, certificate.cert_chain, certificate.private_key, validation)
            context = used.get(key) or self._contexts.get(key)
            if context is None:
                try:
                    context = load_certificate(listener.name, certificate, validation)
                except (ssl.SSLError, OSError, ValueError) as exc:
                    problems.append(f"{certificate.name}: {exc}")
                    continue
            used[key] = context
            loaded.append((certificate, context))
        if not loaded:
            problems = problems or ["no certificate"]
            errors[listener.name] = "cannot terminate TLS: " + "; ".join(problems)
        return loaded
