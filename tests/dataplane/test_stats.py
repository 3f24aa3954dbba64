"""The data plane's counters (turnout.dataplane.stats), driven through the in-memory harnesses.

Every test compares the counters before and after a scenario (they are per process and
other tests move them too), and checks that each one moved exactly as expected -- and
that the others did not move.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import h2.errors
import h2.events

from turnout import ir
from turnout.dataplane import snapshot, worker
from turnout.dataplane.http1 import SocketState
from turnout.dataplane.router import compile_routes
from turnout.dataplane.server import DataPlane
from turnout.dataplane.snapshot import Snapshot
from turnout.dataplane.stats import CODE_CLASSES, STATS, StatusCounts
from turnout.dataplane.upstream import EndpointPool, UpstreamCluster
from turnout.demo.h2echo import H2EchoProtocol

from .helpers import config, free_port, listener, request, simple_config
from .test_http1_protocol import ROUTES, FakeUpstreams, _client, _responses
from .test_http2_protocol import Peer, _forwarding_table, fake_upstream
from .test_upstream_h2 import h2c_config

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _now() -> Snapshot:
    return snapshot.take(STATS, {}, 0)


def _moved(before: Snapshot) -> dict[str, Any]:
    """What changed since ``before``: counter name (or "2xx", "local.no_route") -> delta."""
    after = _now()
    moved: dict[str, Any] = {}
    for cls, a, b in zip(CODE_CLASSES, before.requests, after.requests, strict=True):
        if b != a:
            moved[cls] = b - a
    for reason in set(before.local) | set(after.local):
        delta = after.local.get(reason, 0) - before.local.get(reason, 0)
        if delta:
            moved[f"local.{reason}"] = delta
    for name in snapshot.COUNTERS:
        delta = getattr(after, name) - getattr(before, name)
        if delta:
            moved[name] = delta
    return moved


def _table(connector: Any = None, port: int = 80) -> tuple[SocketState, dict[str, UpstreamCluster]]:
    """ROUTES of the HTTP/1.1 protocol tests over clusters "c" (one endpoint) and "empty"."""
    pool = EndpointPool(
        "127.0.0.1", port, **({} if connector is None else {"connector": connector})
    )
    clusters = {"c": UpstreamCluster("c", (pool,)), "empty": UpstreamCluster("empty", ())}
    vhost = ir.VirtualHost(hostname="*", routes=ROUTES)
    table = compile_routes(config((listener(8080, (vhost,), spec_port=8080),)), clusters)
    return SocketState(next(iter(table.sockets.values()))), clusters


async def test_a_proxied_200_counts_once_for_the_client_and_its_cluster() -> None:
    fake = FakeUpstreams()
    state, clusters = _table(fake)
    before = _now()
    client, transport = _client(state)
    client.data_received(b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n")
    ((upstream, _),) = fake.connections
    upstream.data_received(OK)
    assert [r.status for r in _responses(transport.data())] == [200]
    assert _moved(before) == {"2xx": 1, "downstream_connections": 1}
    assert clusters["c"].stats.values() == [0, 1, 0, 0, 0]


async def test_local_answers_count_by_reason() -> None:
    state, clusters = _table(FakeUpstreams())
    before = _now()
    client, transport = _client(state)
    client.data_received(
        b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n"  # no rule matches: 404
        b"GET /none HTTP/1.1\r\nHost: a\r\n\r\n"  # cluster "empty": no endpoint, 503
        b"GET /old/x HTTP/1.1\r\nHost: a\r\n\r\n"  # a redirect: 301
        b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n"  # a rule's fixed status: 418
    )
    assert [r.status for r in _responses(transport.data())] == [404, 503, 301, 418]
    assert _moved(before) == {
        "3xx": 1,
        "4xx": 2,
        "5xx": 1,
        "local.no_route": 1,
        "local.no_endpoint": 1,
        "local.redirect": 1,
        "local.invalid_backend": 1,
        "downstream_connections": 1,
    }
    # The 503 is the backend cluster's: a request routed to it that it could not serve.
    assert clusters["empty"].stats.values() == [0, 0, 0, 0, 1]
    assert clusters["c"].stats.values() == [0, 0, 0, 0, 0]


async def test_malformed_request_counts_as_bad_request() -> None:
    state, _ = _table(FakeUpstreams())
    before = _now()
    client, transport = _client(state)
    client.data_received(b"GET /api HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
    assert [r.status for r in _responses(transport.data())] == [400]
    assert _moved(before) == {"4xx": 1, "local.bad_request": 1, "downstream_connections": 1}


async def test_a_response_cut_off_is_not_a_completed_request() -> None:
    fake = FakeUpstreams()
    state, clusters = _table(fake)
    before = _now()
    client, transport = _client(state)
    client.data_received(b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n")
    ((upstream, _),) = fake.connections
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart")
    upstream.connection_lost(ConnectionResetError())  # the backend reset mid-body
    assert transport.aborted
    assert _moved(before) == {"upstream_resets": 1, "downstream_connections": 1}
    assert clusters["c"].stats.values() == [0, 0, 0, 0, 0]


async def test_a_refused_upstream_counts_connect_failure_ejection_and_503() -> None:
    # A real connect to a closed port (the default connector), an in-memory client.
    state, clusters = _table(port=free_port())
    before = _now()
    client, transport = _client(state)
    client.data_received(b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n")
    async with asyncio.timeout(5):
        while not transport.written:
            await asyncio.sleep(0.01)
    assert [r.status for r in _responses(transport.data())] == [503]
    assert _moved(before) == {
        "5xx": 1,
        "local.upstream_connect_failure": 1,
        "upstream_connect_failures": 1,
        "ejections": 1,
        "downstream_connections": 1,
    }
    assert clusters["c"].stats.values() == [0, 0, 0, 0, 1]


def test_an_h2_request_counts_like_an_http1_one() -> None:
    users: list[Any] = []
    table = _forwarding_table(users)
    before = _now()
    peer = Peer(table)
    peer.start()
    sid = peer.request("/x")
    peer.send()
    (stream,) = users
    upstream, _ = fake_upstream()
    stream.attached(upstream)
    upstream.user = stream
    upstream.data_received(OK)
    peer.receive()
    assert peer.response(sid)[b":status"] == b"200"
    assert peer.of(h2.events.StreamEnded, sid)
    assert _moved(before) == {"2xx": 1, "downstream_connections": 1}
    assert stream.target.cluster.stats.values() == [0, 1, 0, 0, 0]


def test_an_h2_grpc_local_answer_is_an_http_200_with_its_reason() -> None:
    before = _now()
    peer = Peer()
    peer.start()
    sid = peer.request("/pkg.Svc/Missing", extra=[("content-type", "application/grpc")])
    peer.send()
    assert peer.response(sid)[b"grpc-status"] == b"12"
    assert _moved(before) == {"2xx": 1, "local.no_route": 1, "downstream_connections": 1}


def test_status_counts_by_class() -> None:
    counts = StatusCounts()
    for status in (100, 101, 200, 204, 299, 301, 404, 499, 500, 503, 599):
        counts.add(status)
    assert counts.values() == [2, 3, 1, 2, 3]


def test_snapshots_sum_and_a_retired_base_drops_the_gauge() -> None:
    a = Snapshot(
        requests=[0, 3, 0, 1, 0],
        local={"no_route": 1},
        upstream_resets=2,
        backends={"ns/a:80": [0, 3, 0, 0, 0]},
        downstream_active=4,
    )
    b = Snapshot(
        requests=[1, 1, 0, 0, 2],
        local={"no_route": 2, "no_endpoint": 1},
        downstream_connections=5,
        backends={"ns/a:80": [0, 1, 0, 0, 0], "ns/b:80": [0, 0, 0, 0, 2]},
        downstream_active=1,
    )
    both = snapshot.total([a, b])
    assert both.requests == [1, 4, 0, 1, 2]
    assert both.local == {"no_route": 3, "no_endpoint": 1}
    assert (both.upstream_resets, both.downstream_connections) == (2, 5)
    assert both.backends == {"ns/a:80": [0, 4, 0, 0, 0], "ns/b:80": [0, 0, 0, 0, 2]}
    assert both.downstream_active == 5
    assert snapshot.total([a, b], gauges=False).downstream_active == 0


async def test_dataplane_snapshot_counts_open_connections_and_keeps_cluster_counts() -> None:
    dataplane = DataPlane()
    port = free_port()
    routes = (ROUTES[-1],)  # a valid configuration; no request is sent
    await dataplane.apply(simple_config(port, routes, {"c": [("127.0.0.1", 1)]}))
    first = dataplane._cluster_objects["c"][1]
    first.stats.add(200)
    # The cluster's IR changes: a new UpstreamCluster object, the same counts.
    await dataplane.apply(simple_config(port, routes, {"c": [("127.0.0.1", 2)]}, version=2))
    second = dataplane._cluster_objects["c"][1]
    assert second is not first
    assert second.stats is first.stats
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(5):
            while dataplane.stats_snapshot().downstream_active != 1:
                await asyncio.sleep(0.01)
        assert dataplane.stats_snapshot().backends == {"c": [0, 1, 0, 0, 0]}
    finally:
        writer.close()
        await dataplane.close(0.1)


async def test_a_snapshot_travels_over_the_control_channel() -> None:
    sent = Snapshot(
        requests=[0, 7, 0, 2, 1],
        local={"no_route": 2},
        ejections=1,
        backends={"ns/a:80": [0, 7, 0, 0, 1]},
        downstream_active=3,
    )
    reader = asyncio.StreamReader()
    reader.feed_data(worker.encode(worker.Stats(sent)))
    reader.feed_eof()
    assert await worker.read_message(reader) == worker.Stats(sent)


async def test_a_request_timeout_counts_as_upstream_timeout() -> None:
    fake = FakeUpstreams()
    state, clusters = _table(fake)
    before = _now()
    client, transport = _client(state)
    client.data_received(b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n")
    client.exchanges[0].request_timed_out()  # what timeouts.request does (policy.py)
    assert [r.status for r in _responses(transport.data())] == [504]
    assert _moved(before) == {
        "5xx": 1,
        "local.upstream_timeout": 1,
        "downstream_connections": 1,
    }
    assert clusters["c"].stats.values() == [0, 0, 0, 0, 1]


class _Resetter(H2EchoProtocol):
    """An h2c backend that resets every stream (INTERNAL_ERROR) instead of answering."""

    def _answer(self, stream_id: int) -> None:
        self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        self.requests.pop(stream_id, None)
        self._flush()


async def test_an_h2c_backend_resetting_the_stream_counts_as_a_reset() -> None:
    server = await asyncio.get_running_loop().create_server(
        lambda: _Resetter(name="h2"), "127.0.0.1", 0
    )
    dataplane = DataPlane()
    port = free_port()
    await dataplane.apply(h2c_config(port, server.sockets[0].getsockname()[1]))
    before = _now()
    try:
        response = await request("127.0.0.1", port, "/x")
    finally:
        server.close()
        await dataplane.close(0.1)
    assert response.status == 503
    moved = _moved(before)
    assert moved == {
        "5xx": 1,
        "local.upstream_reset": 1,
        "upstream_resets": 1,
        "downstream_connections": 1,
    }


def _l4_listener(protocol: ir.model.ListenerProtocol) -> ir.Listener:
    port = free_port()
    return ir.Listener(
        name=f"default/gw/{protocol.lower()}",
        address="127.0.0.1",
        port=port,
        spec_port=port,
        protocol=protocol,
        l4_route=ir.L4Route("r", (ir.L4Backend(1, "c"),)),
    )


async def test_tcp_connections_and_udp_sessions_are_counted() -> None:
    dataplane = DataPlane()
    listeners = (_l4_listener("TCP"), _l4_listener("UDP"))
    tcp, udp = (listener.port for listener in listeners)
    backend = free_port()  # nothing listens: TCP connects are refused, UDP goes nowhere
    result = await dataplane.apply(config(listeners, {"c": [("127.0.0.1", backend)]}))
    assert result == {listener.name: None for listener in listeners}
    before = _now()
    try:
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", tcp)
            with contextlib.suppress(ConnectionResetError):
                async with asyncio.timeout(5):
                    await reader.read()  # reset: the backend refuses
            writer.close()
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        for client in clients + clients[:1]:  # a client's second datagram: the same session
            client.sendto(b"x", ("127.0.0.1", udp))
        async with asyncio.timeout(5):
            while _moved(before).get("udp_sessions", 0) < 2:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        for client in clients:
            client.close()
    finally:
        await dataplane.close(0.1)
    assert _moved(before) == {"l4_connections": 2, "udp_sessions": 2}
