"""Helpers for data plane tests: IR builders, a raw HTTP client, free ports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any

import httptools

from turnout import ir

ANY_PATH = ir.RouteMatch(path=ir.PathMatch(type="PathPrefix", value="/"))


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def rule(
    name: str = "r",
    *,
    match: ir.RouteMatch = ANY_PATH,
    backends: tuple[ir.WeightedBackend, ...] = (),
    filters: ir.Filters | None = None,
    direct_status: int | None = None,
) -> ir.HTTPRouteRule:
    return ir.HTTPRouteRule(
        name=name,
        match=match,
        backends=backends,
        filters=filters or ir.Filters(),
        direct_status=direct_status,
    )


def to(cluster: str, weight: int = 1, **kwargs: Any) -> ir.WeightedBackend:
    return ir.WeightedBackend(weight=weight, cluster=cluster, **kwargs)


def listener(
    port: int,
    vhosts: tuple[ir.VirtualHost, ...],
    *,
    name: str = "default/gw/http",
    address: str = "127.0.0.1",
    hostname: str | None = None,
    spec_port: int = 80,
    protocol: ir.model.ListenerProtocol = "HTTP",
) -> ir.Listener:
    return ir.Listener(
        name=name,
        address=address,
        port=port,
        spec_port=spec_port,
        protocol=protocol,
        hostname=hostname,
        virtual_hosts=vhosts,
    )


def config(
    listeners: tuple[ir.Listener, ...],
    clusters: dict[str, list[tuple[str, int]]] | None = None,
    version: int = 1,
) -> ir.Config:
    return ir.Config(
        version=version,
        gateways=(ir.Gateway(name="default/gw", address="127.0.0.1", listeners=listeners),),
        clusters={
            name: ir.Cluster(
                name=name, endpoints=tuple(ir.Endpoint(address=a, port=p) for a, p in eps)
            )
            for name, eps in (clusters or {}).items()
        },
    )


def simple_config(
    port: int,
    routes: tuple[ir.HTTPRouteRule, ...],
    clusters: dict[str, list[tuple[str, int]]] | None = None,
    *,
    address: str = "127.0.0.1",
    hostname: str = "*",
    version: int = 1,
) -> ir.Config:
    vhost = ir.VirtualHost(hostname=hostname, routes=routes)
    return config((listener(port, (vhost,), address=address),), clusters, version)


@dataclass
class Response:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False
    version: str = ""

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ",".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    def echoed(self, name: str) -> list[str] | None:
        """Values of a request header as the echo backend saw it."""
        headers: dict[str, list[str]] = self.json()["headers"]
        for key, values in headers.items():
            if key.lower() == name.lower():
                return values
        return None


class ResponseReader:
    """Parses a stream of responses (HEAD-aware via ``expect_head``)."""

    def __init__(self) -> None:
        self.responses: list[Response] = []
        self._current = Response()
        self._parser = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._current.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._current.status = self._parser.get_status_code()
        self._current.version = self._parser.get_http_version()

    def on_body(self, body: bytes) -> None:
        self._current.body += body

    def on_message_complete(self) -> None:
        self._current.complete = True
        self.responses.append(self._current)
        self._current = Response()

    def eof(self) -> None:
        """Close-delimited body ends here."""
        if self._current.status and not self._current.complete:
            self._current.complete = True
            self.responses.append(self._current)
            self._current = Response()


class Client:
    """A raw HTTP/1.1 client connection, for exact control of the bytes sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = ResponseReader()
        self.closed = False

    @classmethod
    async def connect(cls, host: str, port: int) -> Client:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def responses(self, count: int = 1, timeout: float = 10.0) -> list[Response]:
        async with asyncio.timeout(timeout):
            while len(self.parser.responses) < count:
                data = await self.reader.read(1 << 20)
                if not data:
                    self.closed = True
                    self.parser.eof()
                    break
                self.parser.feed(data)
        got = self.parser.responses[:count]
        del self.parser.responses[:count]
        return got

    async def response(self, timeout: float = 10.0) -> Response:
        got = await self.responses(1, timeout)
        assert got, "connection closed before a response"
        return got[0]

    async def wait_closed(self, timeout: float = 5.0) -> bool:
        async with asyncio.timeout(timeout):
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return True
                self.parser.feed(data)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def request(
    host: str,
    port: int,
    path: str = "/",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    host_header: str | None = "example.com",
    body: bytes = b"",
) -> Response:
    """One request on a fresh connection."""
    lines = [f"{method} {path} HTTP/1.1"]
    if host_header is not None:
        lines.append(f"Host: {host_header}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    client = await Client.connect(host, port)
    try:
        await client.send(raw)
        return await client.response()
    finally:
        await client.close()
