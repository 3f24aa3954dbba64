"""Fuzz target: raw backend bytes into the upstream response parser (dataplane.upstream).

A GET goes through a ClientConnection to the upstream stub, which answers with the input
cut into reads. A crash is: an exception out of a callback or an unexpected one reaching
the exchange, a 500, client output that does not parse. Then, if the connection went back
to the pool, it is reused for a second request answered with a known response: the client
must get exactly that one (a connection left mid-message would poison it).

    python fuzz/upstream_response.py [corpus dirs] [libFuzzer flags]
"""

from __future__ import annotations

from _fuzzing import instrumented, main

with instrumented(__name__ == "__main__"):
    from _harness import Upstreams, check_client_output, install_checks, new_client, run

_GET = b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n"
_KNOWN = b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nknown"


def one_input(data: bytes) -> None:
    head = data[:1]
    cut = (head[0] if head else 0) or max(1, len(data))
    payload = data[1:]

    async def drive() -> None:
        upstreams = Upstreams()
        client, transport = new_client(upstreams)
        client.data_received(_GET)
        conn, upstream = upstreams.connections[0]
        for start in range(0, len(payload), cut):
            if upstream.closed:
                break
            conn.data_received(payload[start : start + cut])
        if transport.closed:
            check_client_output(transport.take(), transport, local_answers=False)
            client.connection_lost(None)
            return
        if not upstream.closed and conn.user is not None:
            conn.connection_lost(None)  # the backend hangs up: ends a close-delimited body
        first = check_client_output(transport.take(), transport, local_answers=False)
        if transport.closed or not first.statuses:
            client.connection_lost(None)
            return
        pool_idle = list(conn.pool.idle)
        client.data_received(_GET)
        reused, _ = upstreams.connections[-1]
        if reused is conn and conn not in pool_idle:
            raise AssertionError("a connection that was not idle was reused")
        reused.data_received(_KNOWN)
        second = check_client_output(transport.take(), transport, local_answers=False)
        if second.statuses != [201] or second.bodies != [b"known"]:
            raise AssertionError(f"second response poisoned: {second.statuses} {second.bodies}")
        client.connection_lost(None)

    run(drive)


if __name__ == "__main__":
    install_checks()
    main(one_input)
