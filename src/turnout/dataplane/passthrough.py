"""passthrough: TLS listeners for TLSRoute -- route by SNI, then splice or terminate.

Place in the pipeline: :mod:`turnout.dataplane.l4` binds one socket per (address, port)
of TLS listeners and serves it with :class:`TLSConnection`, reading the tables this
module compiles from the IR (``Listener.sni_routes``, ``tls_mode``, ``tls``).

Theory of operation. A connection starts by buffering bytes until
:func:`~turnout.dataplane.clienthello.parse_client_hello` has the whole ClientHello
(within ``HELLO_TIMEOUT``; malformed input or a timeout resets the connection). Its SNI
name picks, like an HTTPS listener would:

1. the listener: the most specific hostname match among the TLS listeners of the port
   (exact, longest wildcard, then the listener without hostname; no SNI: the listener
   without hostname);
2. within it, the route for that SNI name (again most specific first), and from the
   route's weighted backends, an endpoint. Nothing found: the connection is reset
   (conformance: a non-matching SNI or invalid backend sees the connection rejected).

Then the listener's mode decides, per connection -- which is what lets Terminate and
Passthrough listeners share a port (TLSRouteModeMixed):

* **Passthrough**: the buffered bytes and everything after are spliced to the backend
  untouched; the backend completes the handshake with its own certificate.
* **Terminate**: an ``ssl.SSLObject`` over two ``MemoryBIO``s is fed the buffered bytes,
  so the handshake continues from the peeked ClientHello with the listener's
  certificate for that SNI (the same choice as for HTTPS, via
  :class:`turnout.dataplane.tls.TLSListener`). Once it completes, the plaintext is
  spliced to the backend (no ALPN is negotiated: the stream is opaque). A client's
  close_notify or FIN becomes a FIN to the backend; the backend's FIN becomes a
  close_notify to the client.

A table is swapped by reference when the configuration changes; a connection keeps the
backend it was given, so reloads never disturb established streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping

from turnout import ir
from turnout.dataplane import tls
from turnout.dataplane.clienthello import ClientHelloError, parse_client_hello
from turnout.dataplane.router import HostMap
from turnout.dataplane.splice import Balancer, Endpoint, Splice, StreamConnection

HELLO_TIMEOUT = 10.0  # from accept to a complete ClientHello
_READ_SIZE = 64 * 1024


class TLSRouteListener:
    """One TLS listener of a port: its mode, SNI routes and (Terminate) certificates."""

    __slots__ = ("certificates", "mode", "name", "routes")

    def __init__(
        self,
        listener: ir.Listener,
        clusters: Mapping[str, ir.Cluster],
        certificates: tls.TLSListener | None,
    ) -> None:
        self.name = listener.name
        self.mode = listener.tls_mode or "Passthrough"
        self.certificates = certificates
        self.routes: HostMap[Balancer] = HostMap()
        for sni_route in listener.sni_routes:  # most specific first, as HostMap wants none
            self.routes.add(sni_route.hostname, Balancer(sni_route.route, clusters))


class TLSPortTable:
    """The TLS listeners sharing one (address, port), by listener hostname."""

    __slots__ = ("listener_names", "listeners")

    def __init__(self) -> None:
        self.listeners: HostMap[TLSRouteListener] = HostMap()
        self.listener_names: list[str] = []

    def add(self, hostname: str | None, listener: TLSRouteListener) -> None:
        self.listeners.add(hostname, listener)
        self.listener_names.append(listener.name)

    def choose(self, server_name: str | None) -> tuple[TLSRouteListener, Endpoint] | None:
        """The listener and backend endpoint for a ClientHello's SNI; None: reject."""
        name = server_name.encode("ascii") if server_name else None
        listener = self.listeners.get(name) if name else self.listeners.default
        if listener is None:
            return None
        route = listener.routes.get(name) if name else listener.routes.default
        endpoint = route.pick() if route is not None else None
        return (listener, endpoint) if endpoint is not None else None


class TLSSocketState:
    """What the connections of one TLS socket share; ``table`` is swapped on apply."""

    __slots__ = ("connections", "table")

    def __init__(self, table: TLSPortTable) -> None:
        self.table = table
        self.connections: set[StreamConnection] = set()


class _Terminator:
    """Server-side TLS over memory buffers, continuing from bytes already read."""

    __slots__ = ("handshaken", "incoming", "obj", "outgoing")

    def __init__(self, context: ssl.SSLContext) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.handshaken = False

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Decrypt ``data``: (plaintext, the client ended its stream). Raises ssl.SSLError."""
        self.incoming.write(data)
        if not self.handshaken:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                return b"", False
            self.handshaken = True
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self.obj.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                return b"".join(chunks), False
            except ssl.SSLZeroReturnError:  # close_notify
                return b"".join(chunks), True
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)


class TLSConnection(StreamConnection):
    """A client of a TLS listener socket."""

    def __init__(self, state: TLSSocketState) -> None:
        super().__init__(state.connections)
        self._state = state
        self._hello = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._terminator: _Terminator | None = None
        self._endpoint: Endpoint | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._timer = asyncio.get_running_loop().call_later(HELLO_TIMEOUT, self.reset)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._terminator is not None:
            self._decrypt(data)
        elif self.splice is not None:
            self.splice.from_client(data)
        else:
            self._hello += data
            try:
                hello = parse_client_hello(bytes(self._hello))
            except ClientHelloError:
                self.reset()
                return
            if hello is not None:
                if self._timer is not None:
                    self._timer.cancel()
                self._route(hello.server_name)

    def _route(self, server_name: str | None) -> None:
        chosen = self._state.table.choose(server_name)
        if chosen is None:
            self.reset()
            return
        listener, endpoint = chosen
        data = bytes(self._hello)
        self._hello.clear()
        if listener.mode == "Passthrough" or listener.certificates is None:
            self.splice = Splice(self)
            self.splice.start(endpoint, data)
            return
        name = server_name.encode("ascii") if server_name else b""
        self._terminator = _Terminator(listener.certificates.context_for(name))
        self._endpoint = endpoint
        self._decrypt(data)

    def _decrypt(self, data: bytes) -> None:
        terminator = self._terminator
        assert terminator is not None and self._endpoint is not None
        try:
            plaintext, ended = terminator.feed(data)
        except ssl.SSLError:
            self._flush()  # the alert, if OpenSSL wrote one
            self.close()
            return
        self._flush()
        if not terminator.handshaken:
            return
        if self.splice is None:
            self.splice = Splice(self)
            self.splice.start(self._endpoint, plaintext)
        elif plaintext:
            self.splice.from_client(plaintext)
        if ended:
            self.splice.client_eof()

    def _flush(self) -> None:
        assert self._terminator is not None
        out = self._terminator.outgoing.read()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    def eof_received(self) -> bool:
        if self._terminator is not None and not self._terminator.handshaken:
            return False  # FIN during the handshake: nothing to forward
        return super().eof_received()

    # --- ClientSide, encrypting in mode Terminate ----------------------------------------

    def write(self, data: bytes) -> None:
        if self._terminator is None:
            super().write(data)
            return
        try:
            self._terminator.obj.write(data)
        except ssl.SSLError:
            self.close()
            return
        self._flush()

    def write_eof(self) -> None:
        if self._terminator is None:
            super().write_eof()
            return
        # close_notify; OpenSSL then waits for the client's, which is fine: the client
        # may keep sending (half-close) until it ends its side too.
        with contextlib.suppress(ssl.SSLError):
            self._terminator.obj.unwrap()
        self._flush()
