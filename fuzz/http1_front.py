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

from _fuzzing import instrumented, main

with instrumented(__name__ == "__main__"):
    from _harness import (
        Upstreams,
        answer_upstreams,
        check_client_output,
        cut_input,
        install_checks,
        new_client,
        reads,
        run,
    )


def one_input(data: bytes) -> None:
    _, sizes, payload = cut_input(data)

    async def drive() -> None:
        upstreams = Upstreams()
        client, transport = new_client(upstreams)
        answered: set[int] = set()
        for chunk in reads(sizes, payload):
            # After the HTTP/2 preface http2 owns the transport: feed it from then on.
            protocol = getattr(transport, "protocol", None) or client
            protocol.data_received(chunk)  # type: ignore[attr-defined]
            answer_upstreams(upstreams, answered)
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
