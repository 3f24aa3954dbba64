"""End-to-end: DataPlane on 127.0.0.x ports in front of real echo backends."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from turnout import ir
from turnout.dataplane import DataPlane
from turnout.demo.echo import start_echo

from .helpers import Client, config, free_port, listener, request, rule, simple_config, to

pytestmark = pytest.mark.timeout(30)

ADDR = "127.0.0.1"


def _prefix(value: str) -> ir.RouteMatch:
    return ir.RouteMatch(path=ir.PathMatch(type="PathPrefix", value=value))


class Backends:
    def __init__(self) -> None:
        self.servers: dict[str, asyncio.Server] = {}

    async def start(self, name: str) -> tuple[str, int]:
        server = await start_echo(ADDR, 0, name=name)
        self.servers[name] = server
        return ADDR, server.sockets[0].getsockname()[1]

    def close(self) -> None:
        for server in self.servers.values():
            server.close()


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    b = Backends()
    yield b
    b.close()


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=1.0)


async def _serve(
    dp: DataPlane,
    routes: tuple[ir.HTTPRouteRule, ...],
    clusters: dict[str, list[tuple[str, int]]],
    **kwargs: object,
) -> int:
    port = free_port()
    result = await dp.apply(simple_config(port, routes, clusters, **kwargs))  # type: ignore[arg-type]
    assert set(result.values()) == {None}
    return port


async def _many(port: int, count: int, path: str = "/") -> list[tuple[int, str | None]]:
    """``count`` sequential requests on one keep-alive connection: (status, pod)."""
    client = await Client.connect(ADDR, port)
    out = []
    try:
        for _ in range(count):
            await client.send(f"GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode())
            response = await client.response()
            pod = response.json()["pod"] if response.status == 200 else None
            out.append((response.status, pod))
    finally:
        await client.close()
    return out


async def test_weighted_backends(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {name: [await backends.start(name)] for name in ("a", "b", "c")}
    routes = (rule(backends=(to("a", 70), to("b", 30), to("c", 0))),)
    port = await _serve(dataplane, routes, clusters)
    pods = Counter(pod for _, pod in await _many(port, 200))
    assert pods["c"] == 0
    assert pods["a"] + pods["b"] == 200
    assert 0.58 <= pods["a"] / 200 <= 0.82  # 70% within a generous tolerance


async def test_error_status_share(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    routes = (rule(backends=(to("a", 1), ir.WeightedBackend(weight=1, error_status=500))),)
    port = await _serve(dataplane, routes, clusters)
    statuses = Counter(status for status, _ in await _many(port, 200))
    assert set(statuses) == {200, 500}
    assert 0.35 <= statuses[500] / 200 <= 0.65


async def test_round_robin_over_endpoints(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a1"), await backends.start("a2")]}
    port = await _serve(dataplane, (rule(backends=(to("a"),)),), clusters)
    pods = Counter(pod for _, pod in await _many(port, 10))
    assert pods == {"a1": 5, "a2": 5}


async def test_local_statuses(backends: Backends, dataplane: DataPlane) -> None:
    closed_port = free_port()  # nothing listens there
    clusters = {"empty": [], "dead": [(ADDR, closed_port)]}
    routes = (
        rule("direct", match=_prefix("/direct"), direct_status=500),
        rule("empty", match=_prefix("/empty"), backends=(to("empty"),)),
        rule("dead", match=_prefix("/dead"), backends=(to("dead"),)),
    )
    port = await _serve(dataplane, routes, clusters)
    assert (await request(ADDR, port, "/direct")).status == 500
    assert (await request(ADDR, port, "/empty")).status == 503
    assert (await request(ADDR, port, "/dead")).status == 503
    assert (await request(ADDR, port, "/elsewhere")).status == 404


async def test_unknown_host_is_404(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    port = await _serve(dataplane, (rule(backends=(to("a"),)),), clusters, hostname="foo.com")
    assert (await request(ADDR, port, host_header="bar.com")).status == 404
    assert (await request(ADDR, port, host_header="FOO.com:8080")).status == 200


@pytest.mark.parametrize(
    ("redirect", "spec_port", "location"),
    [
        (ir.RequestRedirect(), 80, "http://example.com/r/x?a=1"),
        (ir.RequestRedirect(), 8080, "http://example.com:8080/r/x?a=1"),
        (ir.RequestRedirect(scheme="https"), 8080, "https://example.com/r/x?a=1"),
        (ir.RequestRedirect(scheme="https", port=8443), 80, "https://example.com:8443/r/x?a=1"),
        (ir.RequestRedirect(port=443, scheme="https"), 80, "https://example.com/r/x?a=1"),
        (ir.RequestRedirect(hostname="other.org", status_code=301), 80, "http://other.org/r/x?a=1"),
        (
            ir.RequestRedirect(
                path=ir.PathModifier(type="ReplacePrefixMatch", value="/new", prefix="/r")
            ),
            80,
            "http://example.com/new/x?a=1",
        ),
    ],
)
async def test_redirects(
    dataplane: DataPlane, redirect: ir.RequestRedirect, spec_port: int, location: str
) -> None:
    port = free_port()
    routes = (rule(match=_prefix("/r"), filters=ir.Filters(redirect=redirect)),)
    vhost = ir.VirtualHost(hostname="*", routes=routes)
    await dataplane.apply(config((listener(port, (vhost,), spec_port=spec_port),)))
    response = await request(ADDR, port, "/r/x?a=1", host_header="example.com:1234")
    assert response.status == redirect.status_code
    assert response.header("location") == location


async def test_header_modifiers(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    filters = ir.Filters(
        request_headers=ir.HeaderModifier(
            set=(("x-set", "set-value"),),
            add=(("x-add", "add-appends-values"),),
            remove=("x-remove",),
        ),
        response_headers=ir.HeaderModifier(set=(("x-resp", "from-proxy"),), remove=("x-drop",)),
    )
    port = await _serve(dataplane, (rule(backends=(to("a"),), filters=filters),), clusters)
    response = await request(
        ADDR,
        port,
        headers={
            "X-SET": "original",
            "X-Add": "some-other-value",
            "X-Remove": "bye",
            "x-echo-set-header": "X-Drop: 1, X-Kept: 2",
        },
    )
    assert response.echoed("x-set") == ["set-value"]
    assert response.echoed("x-add") == ["some-other-value,add-appends-values"]
    assert response.echoed("x-remove") is None
    assert response.header("x-resp") == "from-proxy"
    assert response.header("x-drop") is None
    assert response.header("x-kept") == "2"


async def test_backend_filters_apply_after_rule_filters(
    backends: Backends, dataplane: DataPlane
) -> None:
    clusters = {"a": [await backends.start("a")]}
    backend_filters = ir.Filters(request_headers=ir.HeaderModifier(set=(("x-who", "backend"),)))
    routes = (
        rule(
            backends=(to("a", filters=backend_filters),),
            filters=ir.Filters(request_headers=ir.HeaderModifier(set=(("x-who", "rule"),))),
        ),
    )
    port = await _serve(dataplane, routes, clusters)
    assert (await request(ADDR, port)).echoed("x-who") == ["backend"]


async def test_url_rewrite(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    prefix = ir.URLRewrite(
        hostname="rewritten.example",
        path=ir.PathModifier(type="ReplacePrefixMatch", value="/xyz", prefix="/foo"),
    )
    full = ir.URLRewrite(path=ir.PathModifier(type="ReplaceFullPath", value="/full"))
    routes = (
        rule("p", match=_prefix("/foo"), backends=(to("a"),), filters=ir.Filters(rewrite=prefix)),
        rule("f", match=_prefix("/full"), backends=(to("a"),), filters=ir.Filters(rewrite=full)),
        rule("plain", backends=(to("a"),)),
    )
    port = await _serve(dataplane, routes, clusters)
    seen = (await request(ADDR, port, "/foo/bar?q=1")).json()
    assert seen["path"] == "/xyz/bar?q=1"
    assert seen["host"] == "rewritten.example"
    assert (await request(ADDR, port, "/foo")).json()["path"] == "/xyz"
    assert (await request(ADDR, port, "/full/a/b")).json()["path"] == "/full"
    assert (await request(ADDR, port, "/other")).json()["host"] == "example.com"


async def test_forwarding_headers_and_hop_by_hop(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    port = await _serve(dataplane, (rule(backends=(to("a"),)),), clusters)
    response = await request(
        ADDR,
        port,
        headers={
            "Connection": "keep-alive, X-Private",
            "X-Private": "secret",
            "Keep-Alive": "timeout=5",
            "Proxy-Connection": "keep-alive",
            "TE": "trailers",
            "Trailer": "X-T",
            "Upgrade": "websocket",
            "X-Forwarded-For": "203.0.113.9",
            "X-End-To-End": "yes",
        },
    )
    for name in (
        "connection",
        "x-private",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ):
        assert response.echoed(name) is None, name
    assert response.echoed("x-end-to-end") == ["yes"]
    assert response.echoed("x-forwarded-for") == ["203.0.113.9, 127.0.0.1"]
    assert response.echoed("x-forwarded-proto") == ["http"]
    assert response.json()["host"] == "example.com"


async def test_large_bodies_both_ways(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    port = await _serve(dataplane, (rule(backends=(to("a"),)),), clusters)
    size = 4 * 1024 * 1024 + 17
    # request body with Content-Length
    response = await request(ADDR, port, "/up", method="POST", body=b"x" * size)
    assert response.json()["body_length"] == size
    # chunked request body, written in pieces
    client = await Client.connect(ADDR, port)
    await client.send(b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"y" * 100_000
    for _ in range(30):
        await client.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    await client.send(b"0\r\n\r\n")
    assert (await client.response()).json()["body_length"] == 3_000_000
    # responses: content-length and chunked from the backend
    for chunked in ("false", "true"):
        await client.send(
            f"GET /down HTTP/1.1\r\nHost: h\r\nx-echo-body-size: {size}\r\n"
            f"x-echo-chunked: {chunked}\r\n\r\n".encode()
        )
        response = await client.response()
        assert len(response.body) == size
        assert response.body[:256] == bytes(range(256))
        framing = "transfer-encoding" if chunked == "true" else "content-length"
        assert response.header(framing) is not None
    await client.close()


async def test_http10_client(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    port = await _serve(dataplane, (rule(backends=(to("a"),)),), clusters)
    # chunked upstream response -> close-delimited to an HTTP/1.0 client
    client = await Client.connect(ADDR, port)
    await client.send(b"GET / HTTP/1.0\r\nx-echo-body-size: 1000\r\nx-echo-chunked: true\r\n\r\n")
    response = await client.response()
    assert len(response.body) == 1000
    assert response.header("transfer-encoding") is None
    assert response.header("connection") == "close"
    assert await client.wait_closed()
    await client.close()
    # HTTP/1.0 with keep-alive and a content-length response stays open
    client = await Client.connect(ADDR, port)
    for _ in range(2):
        await client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = await client.response()
        assert response.status == 200 and response.header("connection") == "keep-alive"
    await client.close()


async def test_pipelined_requests(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    port = await _serve(dataplane, (rule(backends=(to("a"),)),), clusters)
    client = await Client.connect(ADDR, port)
    await client.send(
        b"GET /1?delay=100ms HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    responses = await client.responses(3)
    assert [r.json()["path"] for r in responses] == ["/1?delay=100ms", "/2", "/3"]
    assert responses[1].json()["body_length"] == 3
    await client.close()


async def test_upstream_keep_alive_reuse(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    port = await _serve(dataplane, (rule(backends=(to("a"),)),), clusters)
    connections = set()
    for _ in range(10):  # ten client connections, one after the other
        connections.add((await request(ADDR, port)).json()["connection"])
    assert len(connections) == 1


async def test_config_swap_during_in_flight_request(
    backends: Backends, dataplane: DataPlane
) -> None:
    clusters = {"old": [await backends.start("old")], "new": [await backends.start("new")]}
    port = free_port()
    await dataplane.apply(simple_config(port, (rule(backends=(to("old"),)),), clusters))
    slow = asyncio.ensure_future(request(ADDR, port, "/?delay=500ms"))
    await asyncio.sleep(0.15)  # the slow request has been routed to "old"
    result = await dataplane.apply(
        simple_config(port, (rule(backends=(to("new"),)),), clusters, version=2)
    )
    assert result == {"default/gw/http": None}
    assert (await request(ADDR, port)).json()["pod"] == "new"
    assert (await slow).json()["pod"] == "old"


async def test_bind_error_reported_other_listeners_serve(
    backends: Backends, dataplane: DataPlane
) -> None:
    clusters = {"a": [await backends.start("a")]}
    blocker = socket.socket()
    blocker.bind(("127.0.0.2", 0))
    blocker.listen()
    busy_port = blocker.getsockname()[1]
    good_port = free_port("127.0.0.3")
    vhost = ir.VirtualHost(hostname="*", routes=(rule(backends=(to("a"),)),))
    listeners = (
        listener(busy_port, (vhost,), name="default/gw/busy", address="127.0.0.2"),
        listener(good_port, (vhost,), name="default/gw/good", address="127.0.0.3"),
        listener(free_port(), (), name="default/gw/tls", protocol="TLS"),
    )
    try:
        result = await dataplane.apply(config(listeners, clusters))
    finally:
        blocker.close()
    assert result["default/gw/good"] is None
    assert "Address already in use" in (result["default/gw/busy"] or "")
    assert result["default/gw/tls"] is None  # served by dataplane/l4.py (no routes: resets)
    assert (await request("127.0.0.3", good_port)).status == 200


async def test_removed_listener_stops_accepting(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")]}
    port = await _serve(dataplane, (rule(backends=(to("a"),)),), clusters)
    assert (await request(ADDR, port)).status == 200
    assert await dataplane.apply(ir.Config(version=2)) == {}
    with pytest.raises(OSError):
        await request(ADDR, port)


async def test_mirror(backends: Backends, dataplane: DataPlane) -> None:
    clusters = {"a": [await backends.start("a")], "m": [await backends.start("m")]}
    filters = ir.Filters(mirrors=(ir.RequestMirror(cluster="m"),))
    port = await _serve(dataplane, (rule(backends=(to("a"),), filters=filters),), clusters)
    before = len(backends.servers)
    assert (await request(ADDR, port, "/mirrored")).json()["pod"] == "a"
    assert before == 2
    # the mirror's echo saw the request: its connection count grows (checked via a direct hit)
    m_port = clusters["m"][0][1]
    for _ in range(50):
        direct = (await request(ADDR, m_port)).json()
        if direct["connection"] > 1:
            break
        await asyncio.sleep(0.02)
    assert direct["connection"] > 1
