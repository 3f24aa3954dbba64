"""h2echo: an HTTP/2 cleartext (h2c, prior knowledge) echo backend for tests and demos.

The HTTP/2 sibling of :mod:`turnout.demo.echo`: every request is answered with JSON
describing what it received, in the same shape (``"proto": "HTTP/2"``; header names as
received, that is lower-case; ``connection`` numbers the TCP connections accepted, so a
test can see that many streams shared one connection)::

    {"path": "/a", "method": "POST", "proto": "HTTP/2", "host": "...", "headers": {...},
     "pod": "<name>", "body_length": 12, "trailers": {"x-t": ["1"]}, "connection": 1,
     "stream": 3}

Request controls: ``x-echo-body-size: N`` answers with N bytes of body instead of the
JSON (the JSON then goes in the ``x-echo-request`` response header), sent as the client's
flow-control windows allow; ``x-echo-delay: SECONDS`` answers late. Every response ends
with the trailer ``x-echo-trailer: done``. Request bodies are streamed, counted and
acknowledged as they arrive (never buffered whole).

Run it with ``python -m turnout.demo.h2echo --listen 127.0.0.1:8081 --name foo``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
from collections.abc import Sequence
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions

_connection_ids = itertools.count(1)
_CONFIG = h2.config.H2Configuration(client_side=False, header_encoding=None)


class _Request:
    __slots__ = ("body_length", "headers", "pending", "trailers")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.body_length = 0
        self.trailers: list[tuple[bytes, bytes]] = []
        self.pending = b""  # response body not yet allowed by the window


class H2EchoProtocol(asyncio.Protocol):
    def __init__(self, *, name: str) -> None:
        self.name = name
        self.number = next(_connection_ids)
        self.conn = h2.connection.H2Connection(config=_CONFIG)
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, _Request] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.conn.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            self._event(event)
        self._flush()

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self.requests[event.stream_id or 0] = _Request(list(event.headers or []))
        elif isinstance(event, h2.events.DataReceived):
            request = self.requests.get(event.stream_id or 0)
            if request is not None:
                request.body_length += len(event.data or b"")
            self.conn.acknowledge_received_data(
                event.flow_controlled_length or 0, event.stream_id or 0
            )
        elif isinstance(event, h2.events.TrailersReceived):
            request = self.requests.get(event.stream_id or 0)
            if request is not None:
                request.trailers = list(event.headers or [])
        elif isinstance(event, h2.events.StreamEnded):
            self._answer(event.stream_id or 0)
        elif isinstance(event, h2.events.StreamReset):
            self.requests.pop(event.stream_id or 0, None)
        elif isinstance(event, h2.events.WindowUpdated):
            for stream_id in list(self.requests):
                self._send_body(stream_id)

    def _answer(self, stream_id: int) -> None:
        request = self.requests.get(stream_id)
        if request is None:
            return
        fields = {n.decode("latin-1"): v.decode("latin-1") for n, v in request.headers}
        delay = float(fields.get("x-echo-delay", "0") or 0)
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._respond, stream_id)
        else:
            self._respond(stream_id)

    def _respond(self, stream_id: int) -> None:
        request = self.requests.get(stream_id)
        if request is None or self.transport is None or self.transport.is_closing():
            return
        described = json.dumps(self._describe(request, stream_id)).encode()
        size = next((int(v) for n, v in request.headers if n == b"x-echo-body-size"), None)
        headers = [(b":status", b"200")]
        if size is None:
            body = described
            headers += [(b"content-type", b"application/json")]
        else:
            body = b"x" * size
            headers += [(b"x-echo-request", described)]
        headers.append((b"content-length", b"%d" % len(body)))
        self.conn.send_headers(stream_id, headers)
        request.pending = body
        self._send_body(stream_id)
        self._flush()

    def _send_body(self, stream_id: int) -> None:
        request = self.requests.get(stream_id)
        if request is None:
            return
        conn = self.conn
        while request.pending:
            window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if window <= 0:
                return
            conn.send_data(stream_id, request.pending[:window])
            request.pending = request.pending[window:]
        if stream_id in conn.streams and not conn.streams[stream_id].closed:
            conn.send_headers(stream_id, [(b"x-echo-trailer", b"done")], end_stream=True)
        del self.requests[stream_id]

    def _describe(self, request: _Request, stream_id: int) -> dict[str, Any]:
        pseudo = {n: v.decode("latin-1") for n, v in request.headers if n.startswith(b":")}
        headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            if not name.startswith(b":"):
                headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        trailers: dict[str, list[str]] = {}
        for name, value in request.trailers:
            trailers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        return {
            "path": pseudo.get(b":path", ""),
            "host": pseudo.get(b":authority", ""),
            "method": pseudo.get(b":method", ""),
            "proto": "HTTP/2",
            "headers": headers,
            "pod": self.name,
            "body_length": request.body_length,
            "trailers": trailers,
            "connection": self.number,
            "stream": stream_id,
        }

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.requests.clear()


async def start_h2echo(host: str, port: int, *, name: str = "h2echo") -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: H2EchoProtocol(name=name), host, port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="HTTP/2 cleartext echo backend")
    parser.add_argument("--listen", default="127.0.0.1:8081", help="HOST:PORT")
    parser.add_argument("--name", default="h2echo")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")

    async def serve() -> None:
        server = await start_h2echo(host.strip("[]"), int(port), name=args.name)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
