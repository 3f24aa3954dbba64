"""Write the generated seed inputs of the http2_front and clienthello targets.

    python fuzz/make_seeds.py        # (re)writes fuzz/corpus/{http2_front,clienthello}/seed-*

Seeds are built with real implementations -- HTTP/2 frames with the h2 client and
hyperframe, ClientHellos captured from Python's ssl module (OpenSSL) -- so the fuzzer
starts from what clients send. Run once by hand; the files are committed. Inputs a
fuzzing run kept (regress-*, hashes) are not touched.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable
from pathlib import Path

import h2.config
import h2.connection
import h2.settings
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

CORPUS = Path(__file__).resolve().parent / "corpus"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# --- HTTP/2 --------------------------------------------------------------------------------


def _client() -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    return conn


def _head(method: bytes, path: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    fields = [(b":method", method), (b":path", path), (b":scheme", b"http")]
    return [*fields, (b":authority", b"a.example"), *extra]


def _frames(*frames: Frame) -> bytes:
    return b"".join(frame.serialize() for frame in frames)


def _get() -> bytes:
    conn = _client()
    conn.send_headers(1, _head(b"GET", b"/api"), end_stream=True)
    return conn.data_to_send()


def _post() -> bytes:
    conn = _client()
    conn.send_headers(1, _head(b"POST", b"/edit/x", (b"content-length", b"5")))
    conn.send_data(1, b"hello", end_stream=True)
    return conn.data_to_send()


def _post_unframed_with_trailers() -> bytes:
    # No content-length: forwarded chunked; trailers end the request.
    conn = _client()
    conn.send_headers(1, _head(b"POST", b"/api", (b"te", b"trailers")))
    conn.send_data(1, b"abc")
    conn.send_data(1, b"defg")
    conn.send_headers(1, [(b"x-checksum", b"1")], end_stream=True)
    return conn.data_to_send()


def _continuation() -> bytes:
    block = Encoder().encode(_head(b"GET", b"/old/page", (b"x-long", b"v" * 40)))
    headers = HeadersFrame(1, block[:10], flags=["END_STREAM"])
    first = ContinuationFrame(1, block[10:30])
    last = ContinuationFrame(1, block[30:], flags=["END_HEADERS"])
    return _preface_frames() + _frames(headers, first, last)


def _preface_frames() -> bytes:
    return _client().data_to_send()


def _rst_stream() -> bytes:
    conn = _client()
    conn.send_headers(1, _head(b"POST", b"/api", (b"content-length", b"100")))
    conn.send_data(1, b"part")
    conn.reset_stream(1, 8)  # CANCEL
    conn.send_headers(3, _head(b"GET", b"/teapot"), end_stream=True)
    return conn.data_to_send()


def _window_update() -> bytes:
    # The client starts with a stream window of 0, asks, then opens the window.
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
    )
    conn.initiate_connection()
    conn.send_headers(1, _head(b"GET", b"/api"), end_stream=True)
    return conn.data_to_send() + _frames(WindowUpdateFrame(0, 1000), WindowUpdateFrame(1, 1))


def _ping() -> bytes:
    return _preface_frames() + _frames(PingFrame(0, b"12345678"), SettingsFrame(0, flags=["ACK"]))


def _odd_settings() -> bytes:
    settings = SettingsFrame(0)
    settings.settings = {
        SettingsFrame.HEADER_TABLE_SIZE: 0,
        SettingsFrame.INITIAL_WINDOW_SIZE: 2**31 - 1,
        SettingsFrame.MAX_FRAME_SIZE: 2**24 - 1,
        SettingsFrame.MAX_CONCURRENT_STREAMS: 0,
        0x4242: 7,  # unknown: ignored (RFC 9113 6.5.2)
    }
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, _head(b"HEAD", b"/api"), end_stream=True)
    raw = conn.data_to_send()
    preface_settings_end = len(PREFACE) + 9 + int.from_bytes(raw[len(PREFACE) : len(PREFACE) + 3])
    return raw[:preface_settings_end] + settings.serialize() + raw[preface_settings_end:]


def _priority() -> bytes:
    conn = _client()
    conn.send_headers(
        3, _head(b"GET", b"/api"), end_stream=True, priority_weight=200, priority_depends_on=1
    )
    return conn.data_to_send() + _frames(PriorityFrame(5, depends_on=3, stream_weight=16))


def _grpc_local() -> bytes:
    conn = _client()
    grpc = ((b"content-type", b"application/grpc"), (b"te", b"trailers"))
    conn.send_headers(1, _head(b"POST", b"/teapot", *grpc), end_stream=True)
    return conn.data_to_send()


def _goaway() -> bytes:
    conn = _client()
    conn.send_headers(1, _head(b"GET", b"/api"), end_stream=True)
    conn.close_connection()
    return conn.data_to_send()


def _malformed() -> bytes:
    # A PING of 7 bytes (must be 8): a FRAME_SIZE_ERROR, answered with GOAWAY.
    return _preface_frames() + b"\x00\x00\x07\x06\x00\x00\x00\x00\x001234567"


def _headers_on_stream_0() -> bytes:
    conn = _client()
    conn.send_headers(1, _head(b"GET", b"/api"), end_stream=True)
    raw = conn.data_to_send()
    headers_at = raw.index(b"\x01\x05\x00\x00\x00\x01") - 3  # HEADERS, END_STREAM|END_HEADERS
    return raw[: headers_at + 5] + b"\x00\x00\x00\x00" + raw[headers_at + 9 :]


def _bad_pseudo() -> bytes:
    # Upper-case field name and a missing :path: a malformed request (RFC 9113 8.1.1).
    block = Encoder().encode([(b":method", b"GET"), (b":scheme", b"http"), (b"X-Up", b"1")])
    return (
        _preface_frames() + HeadersFrame(1, block, flags=["END_STREAM", "END_HEADERS"]).serialize()
    )


def _many_streams_small_reads() -> bytes:
    conn = _client()
    for sid in (1, 3, 5):
        conn.send_headers(sid, _head(b"GET", b"/api/%d" % sid), end_stream=True)
    return conn.data_to_send()


def _h2(payload: bytes, *, cuts: tuple[int, ...] = ()) -> bytes:
    """A target input: first byte (cut count; bit 3 clear: the payload has SETTINGS), cuts."""
    if not payload.startswith(PREFACE):
        raise ValueError("an h2 client's bytes start with the preface")
    return bytes([len(cuts)]) + bytes(c - 1 for c in cuts) + payload[len(PREFACE) :]


H2_SEEDS: dict[str, Callable[[], bytes]] = {
    "get": _get,
    "post-data": _post,
    "post-chunked-trailers": _post_unframed_with_trailers,
    "continuation": _continuation,
    "rst-stream": _rst_stream,
    "window-update": _window_update,
    "ping": _ping,
    "settings-odd": _odd_settings,
    "priority": _priority,
    "grpc-local-answer": _grpc_local,
    "goaway": _goaway,
    "malformed-ping": _malformed,
    "headers-stream-0": _headers_on_stream_0,
    "malformed-request": _bad_pseudo,
}

# --- TLS ClientHello -----------------------------------------------------------------------


def client_hello(
    server_name: str | None, version: ssl.TLSVersion, alpn: tuple[str, ...] = ()
) -> bytes:
    """The first flight of Python's TLS client: one ClientHello."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = version
    if alpn:
        context.set_alpn_protocols(list(alpn))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def _hello_seeds() -> dict[str, bytes]:
    tls13 = client_hello("app.example.com", ssl.TLSVersion.TLSv1_3, ("h2", "http/1.1"))
    tls12 = client_hello("Mixed.Example.ORG", ssl.TLSVersion.TLSv1_2)
    no_sni = client_hello(None, ssl.TLSVersion.TLSv1_3)
    # Records: type 22, version, length; the handshake message: type 1, 3-byte length.
    split = tls12[5:]
    two_records = (
        b"\x16\x03\x01" + len(split[:40]).to_bytes(2, "big") + split[:40]
        + b"\x16\x03\x01" + len(split[40:]).to_bytes(2, "big") + split[40:]
    )  # fmt: skip
    return {
        "tls13-sni-alpn": tls13,
        "tls12-sni": tls12,
        "tls13-no-sni": no_sni,
        "two-records": two_records,
        "truncated-record-header": tls13[:3],
        "truncated-in-extensions": tls13[: len(tls13) // 2],
        "http-request": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "alert-record": b"\x15\x03\x03\x00\x02\x02\x28",
        "server-hello-type": tls13[:5] + b"\x02" + tls13[6:],
        "sni-with-space": tls12.replace(b"Mixed.Example.ORG", b"Mixed Example.ORG"),
        "with-suffix": tls13 + b"\x17\x03\x03\x00\x05hello",
    }


def main() -> None:
    out = CORPUS / "http2_front"
    out.mkdir(parents=True, exist_ok=True)
    for name, make in H2_SEEDS.items():
        (out / f"seed-{name}").write_bytes(_h2(make()))
    cuts = (1, 20, 9, 9, 3, 50)
    (out / "seed-many-streams-cut").write_bytes(_h2(_many_streams_small_reads(), cuts=cuts))
    out = CORPUS / "clienthello"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in _hello_seeds().items():
        (out / f"seed-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
