"""l4: the data plane of TCP, TLS and UDP listeners (TCPRoute, TLSRoute, UDPRoute).

Place in the pipeline: :class:`turnout.dataplane.server.DataPlane` hands every
``ir.Config`` to :meth:`L4DataPlane.apply`, which serves the listeners of protocol TCP,
TLS and UDP (the HTTP ones stay with the server itself):

* TCP: one socket per listener; each connection is spliced
  (:mod:`turnout.dataplane.splice`) to an endpoint of the listener's route.
* TLS: one socket per (address, port), shared by its TLS listeners; the ClientHello's
  SNI picks listener, route and backend, then the stream is passed through or
  terminated (:mod:`turnout.dataplane.passthrough`).
* UDP: one datagram socket per listener with client sessions (:mod:`turnout.dataplane.udp`).

``apply`` compiles the new tables first, closes the sockets that went away (or changed
kind: a TCP port that became TLS), binds the new ones and then swaps every table with
no ``await`` in between. Established connections and UDP sessions keep the backend they
were given: a reload never cuts them. Removing a TCP or TLS listener only stops its
socket accepting (its connections go on); removing a UDP listener ends its sessions,
as their replies went out through its socket.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Literal

from turnout import ir
from turnout.dataplane import tls
from turnout.dataplane.limits import DEFAULT_LIMITS
from turnout.dataplane.passthrough import (
    TLSConnection,
    TLSPortTable,
    TLSRouteListener,
    TLSSocketState,
)
from turnout.dataplane.splice import Balancer, Splice, StreamConnection
from turnout.dataplane.sslcontext import CertificateContext
from turnout.dataplane.udp import UDPListenerProtocol, UDPSocketState

L4_PROTOCOLS = ("TCP", "TLS", "UDP")
_LISTEN_BACKLOG = 1024

Kind = Literal["tcp", "tls", "udp"]
SocketKey = tuple[Kind, str, int]  # (kind, address, port)


class TCPSocketState:
    """What the connections of one TCP listener socket share; ``table`` is swapped."""

    __slots__ = ("connections", "table")

    def __init__(self, table: Balancer | None) -> None:
        self.table = table
        self.connections: set[StreamConnection] = set()


class TCPConnection(StreamConnection):
    """A client of a TCP listener: spliced at once to the route's chosen endpoint."""

    def __init__(self, state: TCPSocketState) -> None:
        super().__init__(state.connections)
        self._state = state

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        table = self._state.table
        endpoint = table.pick() if table is not None else None
        if endpoint is None:
            self.reset()
            return
        # Connect at once, before the client sends anything: server-speaks-first
        # protocols (SMTP, MySQL, ...) need the backend's greeting.
        self.splice = Splice(self)
        self.splice.start(endpoint)

    def data_received(self, data: bytes) -> None:
        if self.splice is not None:
            self.splice.from_client(data)


@dataclass
class _Compiled:
    """The tables of one configuration, by socket, and per-listener problems."""

    tables: dict[SocketKey, Balancer | TLSPortTable | None] = field(default_factory=dict)
    listeners: dict[SocketKey, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class _Bound:
    server: asyncio.AbstractServer | None
    transport: asyncio.DatagramTransport | None
    state: TCPSocketState | TLSSocketState | UDPSocketState
    protocol: UDPListenerProtocol | None = None


class L4DataPlane:
    """Sockets and tables of the TCP, TLS and UDP listeners of one process."""

    def __init__(self, udp_idle_timeout: float = DEFAULT_LIMITS.udp_idle_timeout) -> None:
        self._bound: dict[SocketKey, _Bound] = {}
        self._contexts: dict[tuple[str, str, str], CertificateContext] = {}
        self._udp_idle_timeout = udp_idle_timeout

    async def apply(self, config: ir.Config) -> dict[str, str | None]:
        """Serve ``config``'s L4 listeners; per listener name, None or why it is not served."""
        compiled = self._compile(config)
        for key in [k for k in self._bound if k not in compiled.tables]:
            self._retire(key)
        bind_errors: dict[SocketKey, str] = {}
        for key, table in compiled.tables.items():
            if key not in self._bound:
                try:
                    self._bound[key] = await self._bind(key, table)
                except OSError as exc:
                    bind_errors[key] = str(exc)
        for key, table in compiled.tables.items():  # the swap: no await from here on
            bound = self._bound.get(key)
            if bound is not None:
                bound.state.table = table
        results: dict[str, str | None] = {}
        for key, names in compiled.listeners.items():
            for name in names:
                results[name] = compiled.errors.get(name) or bind_errors.get(key)
        for name, error in compiled.errors.items():
            results.setdefault(name, error)
        return results

    async def close(self) -> None:
        """Stop accepting and end every connection and session (FIN, not reset)."""
        for key in list(self._bound):
            bound = self._bound.pop(key)
            self._stop(bound)
            if isinstance(bound.state, TCPSocketState | TLSSocketState):
                for conn in list(bound.state.connections):
                    conn.shutdown()
        await asyncio.sleep(0)

    # --- compile ---------------------------------------------------------------------------

    def _compile(self, config: ir.Config) -> _Compiled:
        out = _Compiled()
        used: dict[tuple[str, str, str], CertificateContext] = {}
        for gateway in config.gateways:
            for listener in gateway.listeners:
                if listener.protocol not in L4_PROTOCOLS:
                    continue
                kind: Kind = "tls" if listener.protocol == "TLS" else "tcp"
                if listener.protocol == "UDP":
                    kind = "udp"
                key: SocketKey = (kind, listener.address, listener.port)
                if kind != "tls":
                    route = listener.l4_route
                    table = Balancer(route, config.clusters) if route is not None else None
                    out.tables[key] = table
                    out.listeners.setdefault(key, []).append(listener.name)
                    continue
                certificates = None
                if listener.tls_mode == "Terminate":
                    certificates = self._certificates(listener, used, out.errors)
                    if certificates is None:
                        continue
                port_table = out.tables.get(key)
                if not isinstance(port_table, TLSPortTable):
                    port_table = out.tables[key] = TLSPortTable()
                port_table.add(
                    listener.hostname,
                    TLSRouteListener(listener, config.clusters, certificates),
                )
                out.listeners.setdefault(key, []).append(listener.name)
        self._contexts = used
        return out

    def _certificates(
        self,
        listener: ir.Listener,
        used: dict[tuple[str, str, str], CertificateContext],
        errors: dict[str, str],
    ) -> tls.TLSListener | None:
        loaded: list[tuple[ir.TLSCertificate, CertificateContext]] = []
        problems: list[str] = []
        for certificate in listener.tls.certificates if listener.tls is not None else ():
            cache_key = (listener.name, certificate.cert_chain, certificate.private_key)
            context = used.get(cache_key) or self._contexts.get(cache_key)
            if context is None:
                try:
                    context = tls.load_certificate(listener.name, certificate)
                except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                    problems.append(f"{certificate.name}: {exc}")
                    continue
                # The stream after termination is opaque: advertise no application
                # protocol (an HTTPS listener's h2/http1.1 would mislead the client).
                context.set_alpn_protocols([])
            used[cache_key] = context
            loaded.append((certificate, context))
        if not loaded:
            errors[listener.name] = "cannot terminate TLS: " + "; ".join(
                problems or ["no certificate"]
            )
            return None
        return tls.TLSListener(listener.name, loaded)

    # --- sockets ---------------------------------------------------------------------------

    async def _bind(self, key: SocketKey, table: Balancer | TLSPortTable | None) -> _Bound:
        loop = asyncio.get_running_loop()
        kind, address, port = key
        if kind == "udp":
            assert not isinstance(table, TLSPortTable)
            udp_state = UDPSocketState(table)
            udp_protocol = UDPListenerProtocol(udp_state, self._udp_idle_timeout)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: udp_protocol, sock=_socket(address, port, socket.SOCK_DGRAM)
            )
            return _Bound(None, transport, udp_state, udp_protocol)
        if kind == "tls":
            assert isinstance(table, TLSPortTable)
            tls_state = TLSSocketState(table)
            server = await loop.create_server(
                lambda: TLSConnection(tls_state), sock=_socket(address, port, socket.SOCK_STREAM)
            )
            return _Bound(server, None, tls_state)
        assert not isinstance(table, TLSPortTable)
        tcp_state = TCPSocketState(table)
        server = await loop.create_server(
            lambda: TCPConnection(tcp_state), sock=_socket(address, port, socket.SOCK_STREAM)
        )
        return _Bound(server, None, tcp_state)

    def _retire(self, key: SocketKey) -> None:
        self._stop(self._bound.pop(key))

    @staticmethod
    def _stop(bound: _Bound) -> None:
        if bound.server is not None:
            bound.server.close()  # stop accepting; established connections go on
        if bound.protocol is not None:
            bound.protocol.close_sessions()
        if bound.transport is not None:
            bound.transport.close()


def _socket(address: str, port: int, kind: socket.SocketKind) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):  # lets worker processes share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(_LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
