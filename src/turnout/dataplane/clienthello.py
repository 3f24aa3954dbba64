"""clienthello: a sans-IO reader of the TLS ClientHello, for routing by SNI without decrypting.

Place in the pipeline: the data plane's TLS listeners (:mod:`turnout.dataplane.passthrough`)
buffer the first bytes of a connection and call :func:`parse_client_hello` on them after
each read, until it returns a :class:`ClientHello` (route by its ``server_name``) or
raises :class:`ClientHelloError` (close the connection). The bytes themselves are then
forwarded untouched (Passthrough) or fed to an ``ssl.SSLObject`` (Terminate).

Written by hand because no maintained library peeks the SNI on a byte stream: ``ssl``
only exposes it inside a handshake it performs itself (which Passthrough must not do),
and the TLS libraries on PyPI either terminate TLS or parse whole captured packets.
The grammar is small (RFC 8446 section 4.1.2, RFC 6066 section 3, RFC 5246 for the
record layer) and every length is checked against its bound before it is used.

Theory of operation: the input is a prefix of the stream. It is read as TLS records of
type handshake (22), whose payloads are concatenated until the first handshake message,
which must be a ClientHello (type 1), is complete. Fewer bytes than that give None
("need more"); anything that cannot be the start of a TLS 1.0-1.3 ClientHello, or that
would need more than ``MAX_CLIENT_HELLO`` bytes, raises :class:`ClientHelloError`. The
function is pure and re-reads the buffer from the start on each call: only record
headers are read until the message is complete, so that costs little.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_CLIENT_HELLO = 64 * 1024
"""Bytes of records a ClientHello may span. Real ones take 0.2 to 2 KiB (post-quantum key
shares included); anything larger is refused rather than buffered."""

_HANDSHAKE_RECORD = 22
_CLIENT_HELLO = 1
_MAX_RECORD_PAYLOAD = 2**14  # TLSPlaintext.length (RFC 8446 section 5.1)
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16
_HOST_NAME = 0
_HOSTNAME_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")


class ClientHelloError(ValueError):
    """The bytes are not the start of a TLS ClientHello this reader accepts."""


@dataclass(frozen=True, slots=True)
class ClientHello:
    server_name: str | None  # lower-case, without a trailing dot; None: no SNI extension
    alpn: tuple[bytes, ...] = ()  # protocols the client offers, in its order


def parse_client_hello(data: bytes) -> ClientHello | None:
    """The ClientHello at the start of ``data``; None if more bytes are needed."""
    message = _handshake_message(data)
    if message is None:
        return None
    return _client_hello(_Reader(message))


def _handshake_message(data: bytes) -> bytes | None:
    """Concatenate handshake records until the first handshake message is complete."""
    payload = bytearray()
    offset = 0
    while True:
        if len(data) - offset < 5:
            _check_partial_header(data[offset:])
            return None
        content_type, major, minor = data[offset], data[offset + 1], data[offset + 2]
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        if content_type != _HANDSHAKE_RECORD:
            raise ClientHelloError(f"not a TLS handshake record (content type {content_type})")
        if major != 3 or minor > 4:
            raise ClientHelloError(f"unsupported record version {major}.{minor}")
        if length == 0 or length > _MAX_RECORD_PAYLOAD:
            raise ClientHelloError(f"invalid record length {length}")
        if offset + 5 + length > MAX_CLIENT_HELLO:
            raise ClientHelloError(f"ClientHello larger than {MAX_CLIENT_HELLO} bytes")
        available = data[offset + 5 : offset + 5 + length]
        payload += available
        if len(payload) >= 4:
            if payload[0] != _CLIENT_HELLO:
                raise ClientHelloError(f"first handshake message is type {payload[0]}, not 1")
            needed = 4 + int.from_bytes(payload[1:4], "big")
            if needed > MAX_CLIENT_HELLO:
                raise ClientHelloError(f"ClientHello larger than {MAX_CLIENT_HELLO} bytes")
            if len(payload) >= needed:
                return bytes(payload[4:needed])
        if len(available) < length:
            return None  # the record itself is not complete yet
        offset += 5 + length


def _check_partial_header(head: bytes) -> None:
    """Reject early what can already be seen not to be a handshake record header."""
    if head and head[0] != _HANDSHAKE_RECORD:
        raise ClientHelloError(f"not a TLS handshake record (content type {head[0]})")
    if len(head) >= 2 and head[1] != 3:
        raise ClientHelloError(f"unsupported record version {head[1]}")


class _Reader:
    """Bounds-checked reads over one message; every overrun is a ClientHelloError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.remaining():
            raise ClientHelloError(f"truncated {what}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def take_all(self) -> bytes:
        return self.take(self.remaining(), "value")

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def vector(self, length_size: int, what: str) -> _Reader:
        return _Reader(self.take(self.uint(length_size, f"{what} length"), what))


def _client_hello(body: _Reader) -> ClientHello:
    version = body.uint(2, "legacy_version")
    if version >> 8 != 3:
        raise ClientHelloError(f"unsupported ClientHello version {version:#06x}")
    body.take(32, "random")
    session_id = body.vector(1, "legacy_session_id")
    if session_id.remaining() > 32:
        raise ClientHelloError("legacy_session_id longer than 32 bytes")
    suites = body.vector(2, "cipher_suites")
    if suites.remaining() < 2 or suites.remaining() % 2:
        raise ClientHelloError("cipher_suites must be a non-empty list of 2-byte values")
    if body.vector(1, "legacy_compression_methods").remaining() < 1:
        raise ClientHelloError("legacy_compression_methods must not be empty")
    if body.remaining() == 0:
        return ClientHello(None)  # no extensions at all (allowed before TLS 1.3)
    extensions = body.vector(2, "extensions")
    if body.remaining():
        raise ClientHelloError("trailing bytes after the extensions")
    return _extensions(extensions)


def _extensions(extensions: _Reader) -> ClientHello:
    seen: set[int] = set()
    server_name: str | None = None
    alpn: tuple[bytes, ...] = ()
    while extensions.remaining():
        kind = extensions.uint(2, "extension type")
        data = extensions.vector(2, "extension data")
        if kind in seen:
            # RFC 8446 section 4.2: "There MUST NOT be more than one extension of the same type"
            raise ClientHelloError(f"extension {kind} appears twice")
        seen.add(kind)
        if kind == _EXT_SERVER_NAME:
            server_name = _server_name(data)
        elif kind == _EXT_ALPN:
            alpn = _alpn(data)
    return ClientHello(server_name, alpn)


def _server_name(data: _Reader) -> str | None:
    names = data.vector(2, "server_name_list")
    if data.remaining():
        raise ClientHelloError("trailing bytes after server_name_list")
    host: str | None = None
    while names.remaining():
        name_type = names.uint(1, "server name type")
        name = names.vector(2, "server name").take_all()
        if name_type != _HOST_NAME:
            continue  # unknown name types are skipped (RFC 6066 section 3)
        if host is not None:
            raise ClientHelloError("more than one host_name in server_name")
        host = _host_name(name)
    return host


def _host_name(name: bytes) -> str:
    if name.endswith(b"."):
        name = name[:-1]  # the absolute form names the same host
    if not name or len(name) > 253:
        raise ClientHelloError("server name must be 1 to 253 bytes")
    if not _HOSTNAME_BYTES.issuperset(name):
        raise ClientHelloError("server name holds bytes that are not in a DNS name")
    # RFC 6066 section 3: a DNS host name; labels are 1 to 63 bytes (RFC 1035 2.3.4).
    # "a..example.com" would otherwise reach routing, where it matches "*.example.com"
    # (found by fuzz/clienthello.py).
    if any(not label or len(label) > 63 for label in name.split(b".")):
        raise ClientHelloError("server name has an empty label or one over 63 bytes")
    return name.decode("ascii").lower()


def _alpn(data: _Reader) -> tuple[bytes, ...]:
    protocols = data.vector(2, "protocol_name_list")
    if data.remaining():
        raise ClientHelloError("trailing bytes after protocol_name_list")
    found: list[bytes] = []
    while protocols.remaining():
        name = protocols.vector(1, "protocol name").take_all()
        if not name:
            raise ClientHelloError("empty ALPN protocol name")
        found.append(name)
    return tuple(found)
