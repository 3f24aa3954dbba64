"""The sans-IO ClientHello reader: real hellos whole and byte by byte, bad input rejected."""

from __future__ import annotations

import ssl
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnout.dataplane.clienthello import (
    MAX_CLIENT_HELLO,
    ClientHello,
    ClientHelloError,
    parse_client_hello,
)


def openssl_hello(server_name: str | None, alpn: list[str] | None = None) -> bytes:
    """The first flight of a real client (this Python's OpenSSL)."""
    context = ssl.create_default_context()
    context.check_hostname = server_name is not None
    if server_name is None:
        context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def record(payload: bytes, content_type: int = 22, version: bytes = b"\x03\x01") -> bytes:
    return bytes([content_type]) + version + struct.pack(">H", len(payload)) + payload


def vec(data: bytes, size: int) -> bytes:
    return len(data).to_bytes(size, "big") + data


def hello_body(extensions: bytes | None, *, suites: bytes = b"\x13\x01") -> bytes:
    body = b"\x03\x03" + b"\x00" * 32 + vec(b"", 1) + vec(suites, 2) + vec(b"\x00", 1)
    if extensions is not None:
        body += vec(extensions, 2)
    return body


def handshake(body: bytes) -> bytes:
    return b"\x01" + len(body).to_bytes(3, "big") + body


def sni_extension(*names: tuple[int, bytes]) -> bytes:
    entries = b"".join(bytes([kind]) + vec(name, 2) for kind, name in names)
    return struct.pack(">H", 0) + vec(vec(entries, 2), 2)


def test_real_hello_whole() -> None:
    data = openssl_hello("Foo.Example.com", ["h2", "http/1.1"])
    assert parse_client_hello(data) == ClientHello("foo.example.com", (b"h2", b"http/1.1"))


def test_real_hello_byte_at_a_time() -> None:
    data = openssl_hello("abc.example.com")
    for n in range(len(data)):
        assert parse_client_hello(data[:n]) is None, n
    assert parse_client_hello(data) == ClientHello("abc.example.com")


def test_bytes_after_the_hello_are_ignored() -> None:
    data = openssl_hello("abc.example.com") + b"\x17\x03\x03garbage"
    assert parse_client_hello(data) == ClientHello("abc.example.com")


def test_hello_without_sni() -> None:
    assert parse_client_hello(openssl_hello(None)) == ClientHello(None)


def test_hello_without_extensions() -> None:
    assert parse_client_hello(record(handshake(hello_body(None)))) == ClientHello(None)


def test_hello_split_over_records() -> None:
    message = handshake(hello_body(sni_extension((0, b"split.example.com"))))
    data = record(message[:7]) + record(message[7:20]) + record(message[20:])
    assert parse_client_hello(data) == ClientHello("split.example.com")
    for n in range(len(data)):
        assert parse_client_hello(data[:n]) is None, n


def test_labels_of_63_bytes_are_accepted() -> None:
    name = b".".join([b"x" * 63] * 3) + b".com"  # 196 bytes
    extension = sni_extension((0, name))
    hello = parse_client_hello(record(handshake(hello_body(extension))))
    assert hello == ClientHello(name.decode())


def test_trailing_dot_and_unknown_name_types() -> None:
    extension = sni_extension((7, b"\xff\xfe"), (0, b"dot.example.com."))
    assert parse_client_hello(record(handshake(hello_body(extension)))) == ClientHello(
        "dot.example.com"
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "content type"),
        (b"\x16\x02", "record version"),
        (b"\x80\x2e\x01\x03\x01", "content type"),  # SSLv2-style hello
        (record(b""), "record length"),
        (b"\x16\x03\x01\x40\x01", "record length"),  # 16385 > 2^14
        (record(b"\x02\x00\x00\x00"), "not 1"),  # a ServerHello
        (record(b"\x01\xff\xff\xff"), "larger than"),
        (record(handshake(hello_body(None, suites=b"\x13"))), "cipher_suites"),
        (record(handshake(hello_body(b"\x00\x00\x00\x05ab"))), "truncated"),
        (
            record(handshake(hello_body(sni_extension((0, b"a.com")) + sni_extension((0, b"b"))))),
            "twice",
        ),
        (record(handshake(hello_body(sni_extension((0, b"a.com"), (0, b"b.com"))))), "more than"),
        (record(handshake(hello_body(sni_extension((0, b"bad name"))))), "DNS name"),
        (record(handshake(hello_body(sni_extension((0, b""))))), "1 to 253"),
        (record(handshake(hello_body(sni_extension((0, b"x" * 254))))), "1 to 253"),
        # Empty or overlong labels (found by fuzz/clienthello.py): not DNS names.
        (record(handshake(hello_body(sni_extension((0, b"a..example.com"))))), "empty label"),
        (record(handshake(hello_body(sni_extension((0, b".example.com"))))), "empty label"),
        (record(handshake(hello_body(sni_extension((0, b"example.com.."))))), "empty label"),
        (record(handshake(hello_body(sni_extension((0, b"x" * 64 + b".com"))))), "63 bytes"),
        (record(handshake(hello_body(None) + b"\x00")), "extensions length"),
    ],
)
def test_malformed_input_is_rejected(data: bytes, problem: str) -> None:
    with pytest.raises(ClientHelloError, match=problem):
        parse_client_hello(data)


def test_oversized_hello_is_rejected_before_it_is_complete() -> None:
    """A sender cannot make the reader buffer more than MAX_CLIENT_HELLO bytes."""
    message = handshake(b"\x00" * 65_000)  # declared size within the limit...
    # ...but spread over small records whose headers push the total over it.
    data = b"".join(record(message[i : i + 100]) for i in range(0, len(message), 100))
    assert len(data) > MAX_CLIENT_HELLO
    with pytest.raises(ClientHelloError, match="larger than"):
        parse_client_hello(data[: MAX_CLIENT_HELLO + 10])


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    try:
        result = parse_client_hello(data)
    except ClientHelloError:
        return
    assert result is None or isinstance(result, ClientHello)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_real_hellos_never_raise_anything_else(data: st.DataObject) -> None:
    hello = bytearray(openssl_hello("mutate.example.com"))
    for _ in range(data.draw(st.integers(1, 8))):
        hello[data.draw(st.integers(0, len(hello) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(hello)))
    try:
        result = parse_client_hello(bytes(hello[:cut]))
    except ClientHelloError:
        return
    assert result is None or isinstance(result, ClientHello)
