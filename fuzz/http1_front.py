"""Fuzz target: raw client bytes into the HTTP/1.1 front (turnout.dataplane.http1).

The input is cut into reads (sizes taken from its first bytes), fed to a ClientConnection
with a fake transport; every request that reaches the upstream stub is answered. A crash
is: an exception out of a protocol callback, a logged callback error, a 500, a response
that does not parse (unless the input opened with the HTTP/2 preface: then http2 takes the
connection over and gets the rest of the input), an error answer without a close, or a forwarded request that a
fresh httptools parser does not read as exactly one complete request.

    python fuzz/http1_front.py [corpus dirs] [libFuzzer flags]
"""

from __future__ import annotations

import httptools

from _fuzzing import instrumented, main

with instrumented(__name__ == "__main__"):
    from _harness import Upstreams, check_client_output, install_checks, new_client, run

_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
_HEAD_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class _OneRequest:
    """Counts complete requests in what the proxy wrote to one upstream connection."""

    def __init__(self, data: bytes) -> None:
        self.complete = 0
        self.heads = 0
        parser = httptools.HttpRequestParser(self)
        parser.feed_data(data)  # raises: the proxy framed a request badly
        self.method = parser.get_method() if self.heads else b""

    def on_headers_complete(self) -> None:
        self.heads += 1

    def on_message_complete(self) -> None:
        self.complete += 1


def _cuts(data: bytes) -> tuple[list[int], bytes]:
    """First byte: how many cut sizes follow (0-7), each one byte (1-256)."""
    if not data:
        return [], data
    count = data[0] & 7
    sizes = [b + 1 for b in data[1 : 1 + count]]
    return sizes, data[1 + count :]


def one_input(data: bytes) -> None:
    sizes, payload = _cuts(data)

    async def drive() -> None:
        upstreams = Upstreams()
        client, transport = new_client(upstreams)
        start = 0
        answered: set[int] = set()
        for size in [*sizes, len(payload)]:
            chunk = payload[start : start + size]
            start += size
            if chunk:
                # After the HTTP/2 preface http2 owns the transport: feed it from then on.
                protocol = getattr(transport, "protocol", None) or client
                protocol.data_received(chunk)  # type: ignore[attr-defined]
            for i, (conn, upstream) in enumerate(upstreams.connections):
                sent = b"".join(upstream.written)
                if i in answered or upstream.closed or not sent:
                    continue
                seen = _OneRequest(sent)
                if seen.heads > 1:
                    raise AssertionError("two requests written on one upstream exchange")
                if seen.complete == 1:
                    answered.add(i)
                    # HEAD gets no Content-Length: the response checker cannot tell
                    # which request a response belongs to, so it could not skip a body.
                    conn.data_received(_HEAD_ANSWER if seen.method == b"HEAD" else _ANSWER)
        protocol = getattr(transport, "protocol", None)
        if protocol is None:
            check_client_output(transport.take(), transport)
        client.connection_lost(None)
        if protocol is not None:
            protocol.connection_lost(None)  # HTTP/2 answers in frames: no HTTP/1 check

    run(drive)


if __name__ == "__main__":
    install_checks()
    main(one_input)
