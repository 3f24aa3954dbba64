"""l4echo: a TCP (optionally TLS) and UDP echo backend that says who answered.

For the demo and the TCPRoute / TLSRoute / UDPRoute tests: like the conformance suite's
echo server in TCP mode, every answer names the backend, so a client can tell which
backend a gateway chose.

TCP: on accept the server first writes one JSON line::

    {"backend": "<name>", "namespace": "<ns>", "peer": "127.0.0.1:40312",
     "tls": false, "sni": null, "connection": 1}

then echoes every byte it receives. When the client half-closes (EOF) it writes
``{"eof": true, "received": N}\\n`` and closes, so a test sees that the EOF travelled
through the proxy while the way back stayed open. With ``--tls-cert/--tls-key`` the
server speaks TLS itself (``tls`` is true and ``sni`` is the name the client sent),
which is how a passthrough backend looks.

UDP: every datagram is answered with one JSON datagram
``{"backend": ..., "namespace": ..., "peer": "127.0.0.1:5353", "data": "<text>"}``;
``peer`` is the gateway's upstream address, one per client session.

Run it with ``python -m turnout.demo.l4echo --tcp 127.0.0.1:9000 --udp 127.0.0.1:9000
--name foo``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import ssl
from collections.abc import Sequence
from typing import Any, cast


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if peer else "?"


class _TCPEcho(asyncio.Protocol):
    def __init__(self, name: str, namespace: str, number: int, sni: dict[int, str]) -> None:
        self._name, self._namespace, self._number, self._sni = name, namespace, number, sni
        self._transport: asyncio.Transport | None = None
        self._received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        hello: dict[str, Any] = {
            "backend": self._name,
            "namespace": self._namespace,
            "peer": _peer(transport),
            "tls": ssl_object is not None,
            "sni": self._sni.pop(id(ssl_object), None) if ssl_object is not None else None,
            "connection": self._number,
        }
        self._transport.write(json.dumps(hello).encode() + b"\n")

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._received += len(data)
        self._transport.write(data)

    def eof_received(self) -> bool:
        assert self._transport is not None
        self._transport.write(json.dumps({"eof": True, "received": self._received}).encode())
        self._transport.write(b"\n")
        self._transport.close()
        return True


class _UDPEcho(asyncio.DatagramProtocol):
    def __init__(self, name: str, namespace: str) -> None:
        self._name, self._namespace = name, namespace
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        assert self._transport is not None
        answer = {
            "backend": self._name,
            "namespace": self._namespace,
            "peer": f"{addr[0]}:{addr[1]}",
            "data": data.decode("utf-8", "replace"),
        }
        self._transport.sendto(json.dumps(answer).encode(), addr)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _tls_context(cert: str, key: str, sni: dict[int, str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember(ssl_object: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        if name is not None:
            sni[id(ssl_object)] = name

    context.sni_callback = cast("ssl._SNICallback", remember)  # type: ignore[name-defined]
    return context


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    numbers = itertools.count(1)
    sni: dict[int, str] = {}
    context = _tls_context(args.tls_cert, args.tls_key, sni) if args.tls_cert else None
    if args.tcp:
        host, port = _split(args.tcp)
        await loop.create_server(
            lambda: _TCPEcho(args.name, args.namespace, next(numbers), sni),
            host,
            port,
            ssl=context,
            reuse_address=True,
        )
    if args.udp:
        host, port = _split(args.udp)
        await loop.create_datagram_endpoint(
            lambda: _UDPEcho(args.name, args.namespace), local_addr=(host, port)
        )
    await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="TCP/TLS/UDP echo backend")
    parser.add_argument("--tcp", help="host:port to accept TCP (or TLS) connections on")
    parser.add_argument("--udp", help="host:port to answer UDP datagrams on")
    parser.add_argument("--name", default="echo", help="reported as the backend name")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve TLS on --tcp")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    args = parser.parse_args(argv)
    if not args.tcp and not args.udp:
        parser.error("give --tcp, --udp or both")
    try:
        import uvloop

        uvloop.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
