"""Fuzz target: raw client bytes into the HTTP/2 front (turnout.dataplane.http2, h2stream).

The input follows the client connection preface (and, if bit 3 of its first byte is set,
an empty client SETTINGS frame, so the fuzzer need not find one to reach streams); it is
cut into reads (sizes taken from its first bytes, see _harness.cut_input) and fed to a
ClientConnection, which hands the connection to http2 on the preface as it does on a
plaintext socket. Every request that reaches the upstream stub is answered.

A crash is: an exception out of a protocol callback, a logged callback error, a write
after close, a forwarded request that is not exactly one well-framed HTTP/1.1 request, or
output that breaks HTTP/2 for any client (:class:`ServerOutput`). GOAWAY, RST_STREAM,
REFUSED_STREAM and closing are all correct answers to bad input and are not checked.

    python fuzz/http2_front.py [corpus dirs] [libFuzzer flags]
"""

from __future__ import annotations

from _fuzzing import instrumented, main

# h2 and its parsers too: their coverage tells the fuzzer which frames it has built.
with instrumented(__name__ == "__main__", also=("h2", "hpack", "hyperframe")):
    from h2.exceptions import ProtocolError
    from h2.frame_buffer import FrameBuffer
    from hpack import Decoder
    from hyperframe.exceptions import HyperframeError
    from hyperframe.frame import (
        DataFrame,
        ExtensionFrame,
        Frame,
        HeadersFrame,
        PushPromiseFrame,
        RstStreamFrame,
        SettingsFrame,
    )

    from _harness import (
        Upstreams,
        answer_upstreams,
        cut_input,
        install_checks,
        new_client,
        reads,
        run,
    )

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame, stream 0
_DEFAULT_FRAME_SIZE = 16384
_DEFAULT_TABLE_SIZE = 4096


class ClientSettings:
    """The largest MAX_FRAME_SIZE and HEADER_TABLE_SIZE any client SETTINGS frame gave.

    Read from the input rather than from the server's h2 state after each read: one read
    may carry several SETTINGS, and the server may send frames under each in turn
    (RFC 7541 4.2: a table size update for every change between two header blocks).
    """

    def __init__(self) -> None:
        self.frames = FrameBuffer(server=True)
        self.frames.max_frame_size = 2**24 - 1
        self.max_frame_size = _DEFAULT_FRAME_SIZE
        self.header_table_size = _DEFAULT_TABLE_SIZE
        self.broken = False

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.frames.add_data(data)
            for frame in self.frames:
                if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                    values = frame.settings
                    frame_size = values.get(SettingsFrame.MAX_FRAME_SIZE, 0)
                    table_size = values.get(SettingsFrame.HEADER_TABLE_SIZE, 0)
                    self.max_frame_size = max(self.max_frame_size, frame_size)
                    self.header_table_size = max(self.header_table_size, table_size)
        except (ProtocolError, HyperframeError):
            self.broken = True  # the server stops reading here too (connection error)


class ServerOutput:
    """What any HTTP/2 client must be able to read in the server's bytes.

    Parsed with what ``h2.connection.H2Connection(client_side=True)`` parses with -- its
    FrameBuffer (frame syntax, sizes, stream 0 or not, CONTINUATION sequencing) and an
    HPACK decoder (the shared compression state must stay in step) -- but not with a
    whole client connection: that would refuse frames on streams it did not open itself,
    and here the fuzz input opened them. Per stream, RFC 9113 8.1: a response is
    informational heads, one final head starting with :status, DATA, optional trailers;
    nothing but RST_STREAM / WINDOW_UPDATE / PRIORITY after END_STREAM or RST_STREAM.
    The server opens no streams (no push): every stream is one the client opened.
    """

    def __init__(self) -> None:
        self.frames = FrameBuffer(server=False)
        self.frames.max_frame_size = _DEFAULT_FRAME_SIZE
        self.decoder = Decoder()
        self.decoder.max_allowed_table_size = _DEFAULT_TABLE_SIZE
        self.started = False
        self.heads: set[int] = set()  # streams whose final response head was sent
        self.ended: set[int] = set()  # streams the server ended or reset

    def allow(self, settings: ClientSettings) -> None:
        """What the client's SETTINGS allowed so far (the largest: lenient on timing)."""
        self.frames.max_frame_size = settings.max_frame_size
        self.decoder.max_allowed_table_size = settings.header_table_size

    def feed(self, data: bytes, highest_client_stream: int) -> None:
        self.frames.add_data(data)
        for frame in self.frames:  # raises on bad syntax, sizes, CONTINUATION order
            self._frame(frame, highest_client_stream)

    def _frame(self, frame: Frame, highest: int) -> None:
        if not self.started:
            # RFC 9113 3.4: the server connection preface is a SETTINGS frame.
            if not isinstance(frame, SettingsFrame) or "ACK" in frame.flags:
                raise AssertionError(f"server preface is not SETTINGS: {frame}")
            self.started = True
        if isinstance(frame, (ExtensionFrame, PushPromiseFrame)):
            raise AssertionError(f"server sent {frame}")
        sid = frame.stream_id
        if sid and (sid % 2 == 0 or sid > highest):
            raise AssertionError(f"frame on a stream the client did not open: {frame}")
        if isinstance(frame, HeadersFrame):
            self._headers(frame)
        elif isinstance(frame, DataFrame):
            if sid not in self.heads or sid in self.ended:
                raise AssertionError(f"DATA before a response head or after the end: {frame}")
            if "END_STREAM" in frame.flags:
                self.ended.add(sid)
        elif isinstance(frame, RstStreamFrame):
            self.ended.add(sid)

    def _headers(self, frame: HeadersFrame) -> None:
        sid = frame.stream_id
        fields = self.decoder.decode(bytes(frame.data), raw=True)  # HPACK stays in step
        end = "END_STREAM" in frame.flags
        if sid in self.ended:
            raise AssertionError(f"HEADERS after the stream ended: {frame}")
        if end:
            self.ended.add(sid)
        for name, value in fields:
            # RFC 9113 8.2.1: lower-case names, no CR, LF or NUL in values.
            if name != name.lower() or any(c in value for c in b"\r\n\x00"):
                raise AssertionError(f"malformed field {name!r}: {value!r}")
        pseudo = [name for name, _ in fields if name[:1] == b":"]
        if sid in self.heads:  # trailers: END_STREAM, no pseudo-fields (8.1)
            if not end or pseudo:
                raise AssertionError(f"bad trailers {fields} on {frame}")
            return
        if pseudo != [b":status"] or fields[0][0] != b":status":
            raise AssertionError(f"response head without one leading :status: {fields}")
        status = fields[0][1]
        if len(status) != 3 or not status.isdigit():
            raise AssertionError(f"bad :status {status!r}")
        if status[:1] == b"1":
            if end:  # 8.1: an informational head never ends the stream
                raise AssertionError(f"1xx head with END_STREAM: {frame}")
        else:
            self.heads.add(sid)


def one_input(data: bytes) -> None:
    first, sizes, payload = cut_input(data)
    payload = PREFACE + (SETTINGS if first & 8 else b"") + payload

    async def drive() -> None:
        upstreams = Upstreams()
        client, transport = new_client(upstreams)
        output = ServerOutput()
        settings = ClientSettings()
        answered: set[int] = set()
        for chunk in reads(sizes, payload):
            settings.feed(chunk)
            output.allow(settings)
            # http1 reads the preface, then http2 owns the transport (set_protocol).
            protocol = getattr(transport, "protocol", None) or client
            protocol.data_received(chunk)  # type: ignore[attr-defined]
            answer_upstreams(upstreams, answered)
            _check(output, transport.take(), getattr(transport, "protocol", None))
        client.connection_lost(None)
        protocol = getattr(transport, "protocol", None)
        if protocol is not None:
            protocol.connection_lost(None)

    run(drive)


def _check(output: ServerOutput, data: bytes, protocol: object) -> None:
    h2conn = getattr(protocol, "h2", None)
    if h2conn is None:
        if data:
            raise AssertionError(f"HTTP/1.1 output before the hand-over: {data[:80]!r}")
        return
    output.feed(data, h2conn.highest_inbound_stream_id)


if __name__ == "__main__":
    install_checks()
    main(one_input)
