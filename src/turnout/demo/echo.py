"""echo: a small HTTP/1.1 echo backend for the demo and for tests across the project.

It answers every request with JSON describing what it received, in the shape of the
Gateway API conformance echo server::

    {"path": "/a?b=1", "host": "foo.example.com", "method": "GET", "proto": "HTTP/1.1",
     "headers": {"X-Forwarded-For": ["127.0.0.1"], ...}, "namespace": "default",
     "pod": "<name>", "body_length": 0, "connection": 3}

``path`` is the request target as received (query included), ``headers`` use Go's
canonical names (``X-Forwarded-For``) and leave out Host, like the conformance server.
``connection`` numbers the TCP connections this process accepted (1, 2, ...), so tests can
count how many connections a proxy opened. Request bodies are streamed and only counted.

Request controls:

* ``x-echo-set-header: Name: value, Other: value`` -- set those response headers.
* ``x-echo-delay: 250ms`` (or ``2s``), or the query parameter ``?delay=250ms`` -- answer late.
* ``x-echo-stream: N`` (or ``?stream=N``) -- a long streaming answer: the head at once,
  then N chunks, one every ``x-echo-stream-interval`` (or ``?interval=``; 100ms by
  default), each a JSON line ``{"pod": ..., "chunk": i}``.
* ``x-echo-body-size: N`` -- answer with N bytes of body instead of the JSON (the JSON then
  goes in the ``x-echo-request`` response header); ``x-echo-chunked: true`` sends it chunked.

Retry simulation (like the conformance echo server's), by query parameter or by header
(``x-echo-succeed-after`` and so on): ``?succeedAfter=N`` makes the first N requests for
a key fail and the later ones answer 200. The key is ``key=`` (or ``uuid=``) when given,
else the request target as received. A failure answers with ``status=CODE`` (or
``responseCode=CODE``; 500 by default), or with ``failWith=reset`` closes the connection
abruptly (TCP reset) without a response; ``delayRetry=250ms`` delays only the failures
(``delay=`` delays every answer). Requests counted for a key -- with or without
``succeedAfter`` -- carry their number in the JSON as ``"attempt": n`` and in the
``x-echo-attempt`` response header, so a test can ask a backend how often it was tried.
Counts are per process and never expire.

TLS: with ``--tls-cert FILE --tls-key FILE`` the server speaks HTTPS, and the JSON gets
``"tls": {"sni": "<server name the client sent, or null>", "client_sans": [...]}``;
with ``--tls-client-ca FILE`` it also asks for a client certificate (optional) and
lists the DNS and URI SANs of the one it verified in ``client_sans``. Tests use it as a
backend behind a BackendTLSPolicy.

Run it with ``python -m turnout.demo.echo --listen 127.0.0.1:8080 --name foo``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import ssl
from collections import deque
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httptools

_connection_ids = itertools.count(1)
_STATUS_200 = b"HTTP/1.1 200 OK\r\n"
_PIECE = 64 * 1024
# Retry simulation: requests seen per key (see the module docstring).
_attempts: dict[str, int] = {}


class _Slot:
    """A response in the order queue; ``data`` is None until it is ready."""

    __slots__ = ("data", "interval", "pieces", "reset", "streaming")

    def __init__(self) -> None:
        self.data: list[bytes] | None = None
        self.reset = False  # abort the connection instead of answering
        self.pieces: list[bytes] = []  # a streamed body, written one per interval
        self.interval = 0.0
        self.streaming = False  # its head is written; pieces are on their way


class EchoProtocol(asyncio.Protocol):
    """One connection to the echo server; responses are sent in request order."""

    def __init__(self, *, name: str, namespace: str) -> None:
        self._name = name
        self._namespace = namespace
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._connection = next(_connection_ids)
        self._queue: deque[_Slot] = deque()  # responses in request order
        self._close_after = False
        self._tls: dict[str, Any] | None = None  # what the TLS handshake said, if any
        # per request
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body_length = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            peer = transport.get_extra_info("peercert") or {}
            self._tls = {
                "sni": getattr(ssl_object, "echo_sni", None),
                "client_sans": [str(v) for _, v in peer.get("subjectAltName", ())],
            }

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            self._send_raw(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            self._close_after = True
            self._flush()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body_length += len(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        request = {
            "path": self._url.decode("latin-1"),
            "host": "",
            "method": parser.get_method().decode("ascii"),
            "proto": "HTTP/" + parser.get_http_version(),
            "headers": {},
            "namespace": self._namespace,
            "pod": self._name,
            "body_length": self._body_length,
            "connection": self._connection,
        }
        headers: dict[str, list[str]] = {}
        for raw_name, raw_value in self._headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            if name.lower() == "host":
                request["host"] = value
            else:
                headers.setdefault(_canonical(name), []).append(value)
        request["headers"] = headers
        if self._tls is not None:
            request["tls"] = self._tls
        keep_alive = parser.should_keep_alive()
        self._url, self._headers, self._body_length = b"", [], 0
        slot = _Slot()
        self._queue.append(slot)
        path = str(request["path"])
        delay = _delay(headers, path)
        status, reset = 200, False
        failure = _simulate_retry(request, headers, path)
        if failure is not None:
            status, reset, failure_delay = failure
            delay = max(delay, failure_delay)
        response = [] if reset else _response(request, headers, keep_alive, status)
        stream = _control(headers, _query(path), "stream")
        if stream.isdigit() and not reset:
            response, slot.pieces = _stream_response(request, int(stream), keep_alive)
            interval = _control(headers, _query(path), "streamInterval") or _control(
                headers, _query(path), "interval"
            )
            slot.interval = _duration(interval) if interval else 0.1
        if not keep_alive:
            self._close_after = True
        if delay > 0:
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self._ready, slot, response, reset)
        else:
            self._ready(slot, response, reset)

    def _ready(self, slot: _Slot, response: list[bytes], reset: bool = False) -> None:
        slot.data = response
        slot.reset = reset
        self._flush()

    def _send_raw(self, data: bytes) -> None:
        slot = _Slot()
        slot.data = [data]
        self._queue.append(slot)

    def _flush(self) -> None:
        transport = self._transport
        queue = self._queue
        while queue and queue[0].data is not None:
            slot = queue[0]
            if slot.streaming:
                return  # the responses after it wait for its last piece
            if slot.reset:
                queue.clear()
                if transport is not None:
                    transport.abort()
                return
            data = slot.data
            if transport is not None and not transport.is_closing() and data:
                transport.write(b"".join(data))
            if slot.pieces:
                slot.streaming = True
                asyncio.get_running_loop().call_later(slot.interval, self._stream, slot)
                return
            queue.popleft()
        if not queue and self._close_after and transport is not None:
            transport.close()

    def _stream(self, slot: _Slot) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(slot.pieces.pop(0))
        if slot.pieces:
            asyncio.get_running_loop().call_later(slot.interval, self._stream, slot)
            return
        slot.streaming = False
        self._queue.popleft()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _canonical(name: str) -> str:
    """Go's canonical MIME header key: "x-forwarded-for" -> "X-Forwarded-For"."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query) if "?" in path else {}


def _stream_response(
    request: dict[str, object], count: int, keep_alive: bool
) -> tuple[list[bytes], list[bytes]]:
    """The head of a chunked streaming answer, and its body pieces (the last one ends it)."""
    head = [
        _STATUS_200,
        b"content-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n",
        b"" if keep_alive else b"connection: close\r\n",
        b"\r\n",
    ]
    pieces = []
    for i in range(count):
        line = json.dumps({"pod": request["pod"], "chunk": i}).encode() + b"\n"
        pieces.append(b"%x\r\n%s\r\n" % (len(line), line))
    pieces.append(b"0\r\n\r\n")
    return head, pieces


def _delay(headers: dict[str, list[str]], path: str) -> float:
    text = headers.get("X-Echo-Delay", [""])[0]
    if not text and "delay=" in path:
        text = parse_qs(urlsplit(path).query).get("delay", [""])[0]
    return _duration(text)


def _control(headers: dict[str, list[str]], query: dict[str, list[str]], name: str) -> str:
    """A request control: query parameter ``name`` or header ``x-echo-<kebab-name>``."""
    if name in query:
        return query[name][0]
    header = "X-Echo-" + _canonical(re.sub(r"(?<!^)(?=[A-Z])", "-", name))
    return headers.get(header, [""])[0]


def _simulate_retry(
    request: dict[str, object], headers: dict[str, list[str]], path: str
) -> tuple[int, bool, float] | None:
    """Count the request for its key; (status, reset, delay) when it is to fail."""
    query = parse_qs(urlsplit(path).query) if "?" in path else {}
    key = _control(headers, query, "key") or _control(headers, query, "uuid")
    succeed_after = _control(headers, query, "succeedAfter")
    if not key and not succeed_after.isdigit():
        return None
    key = key or path
    attempt = _attempts.get(key, 0) + 1
    _attempts[key] = attempt
    request["attempt"] = attempt
    if not succeed_after.isdigit() or attempt > int(succeed_after):
        return None
    code = _control(headers, query, "status") or _control(headers, query, "responseCode")
    status = int(code) if code.isdigit() and 100 <= int(code) <= 999 else 500
    reset = _control(headers, query, "failWith").lower() == "reset"
    return status, reset, _duration(_control(headers, query, "delayRetry"))


def _duration(text: str) -> float:
    text = text.strip()
    try:
        if text.endswith("ms"):
            return float(text[:-2]) / 1000
        if text.endswith("s"):
            return float(text[:-1])
        return float(text) if text else 0.0
    except ValueError:
        return 0.0


def _status_line(status: int) -> bytes:
    if status == 200:
        return _STATUS_200
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    return f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")


def _response(
    request: dict[str, object],
    headers: dict[str, list[str]],
    keep_alive: bool,
    status: int = 200,
) -> list[bytes]:
    extra = b""
    if "attempt" in request:
        extra += b"x-echo-attempt: %d\r\n" % cast(int, request["attempt"])
    for spec in headers.get("X-Echo-Set-Header", []):
        for item in spec.split(","):
            name, sep, value = item.partition(":")
            if sep and name.strip():
                extra += f"{name.strip()}: {value.strip()}\r\n".encode("latin-1")
    connection = b"" if keep_alive else b"connection: close\r\n"
    body = json.dumps(request).encode()
    size_text = headers.get("X-Echo-Body-Size", [""])[0]
    if not size_text.isdigit():
        return [
            _status_line(status),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
            extra,
            connection,
            b"\r\n",
            body,
        ]
    size = int(size_text)
    chunked = headers.get("X-Echo-Chunked", [""])[0].lower() == "true"
    framing = b"transfer-encoding: chunked\r\n" if chunked else b"content-length: %d\r\n" % size
    parts = [
        _status_line(status),
        b"x-echo-request: ",
        body,
        b"\r\n",
        framing,
        extra,
        connection,
        b"\r\n",
    ]
    pattern = bytes(range(256)) * (_PIECE // 256)
    remaining = size
    while remaining > 0:
        piece = pattern[: min(remaining, _PIECE)]
        remaining -= len(piece)
        parts += (b"%x\r\n" % len(piece), piece, b"\r\n") if chunked else (piece,)
    if chunked:
        parts.append(b"0\r\n\r\n")
    return parts


async def start_echo(
    host: str,
    port: int,
    *,
    name: str,
    namespace: str = "default",
    tls: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """Start an echo server on ``host:port`` (port 0 picks a free one); returns the server."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: EchoProtocol(name=name, namespace=namespace),
        host,
        port,
        reuse_address=True,
        ssl=tls,
    )


def tls_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """A server context that records the SNI name each client sent (``echo_sni``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL

    def record_sni(ssl_object: Any, server_name: str | None, _: ssl.SSLContext) -> None:
        ssl_object.echo_sni = server_name

    context.sni_callback = record_sni
    return context


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="HTTP echo backend")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="host:port")
    parser.add_argument("--name", default="echo", help="reported as the pod name")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--tls-client-ca", help="PEM CAs to verify optional client certs")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    tls = tls_context(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None

    async def serve() -> None:
        server = await start_echo(
            host or "0.0.0.0", int(port), name=args.name, namespace=args.namespace, tls=tls
        )
        print(f"echo {args.name} listening on {args.listen}", flush=True)
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
