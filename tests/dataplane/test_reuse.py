"""Compiled virtual hosts are kept across configurations only while nothing they use changed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from turnout import ir
from turnout.dataplane import DataPlane
from turnout.dataplane.reuse import CompiledHosts
from turnout.dataplane.router import RouteTable, SocketTable, VirtualHostTable, compile_routes
from turnout.dataplane.upstream import UpstreamCluster
from turnout.demo.echo import start_echo

from .helpers import config, free_port, listener, request, rule, simple_config, to

pytestmark = pytest.mark.timeout(30)


def _vhosts(table: RouteTable) -> dict[bytes, VirtualHostTable]:
    (socket_table,) = table.sockets.values()
    assert isinstance(socket_table, SocketTable)
    listener_table = socket_table.listeners.default  # the listener has no hostname
    assert listener_table is not None
    return dict(listener_table.virtual_hosts.exact)


def _config(port: int, *, gen: str, spec_port: int = 80) -> ir.Config:
    redirect = ir.Filters(redirect=ir.RequestRedirect(scheme="https"))
    a = ir.VirtualHost("a.test", (rule("a", backends=(to("a"),)),))
    b = ir.VirtualHost("b.test", (rule("b" + gen, backends=(to("b"),)),))
    c = ir.VirtualHost("c.test", (rule("c", filters=redirect),))
    return config(
        (listener(port, (a, b, c), spec_port=spec_port),),
        {"a": [("127.0.0.1", 1)], "b": [("127.0.0.1", 2)]},
    )


def _compile(
    cfg: ir.Config, clusters: dict[str, UpstreamCluster], reuse: CompiledHosts
) -> RouteTable:
    reuse.begin()
    return compile_routes(cfg, clusters, reuse)


def test_unchanged_virtual_hosts_are_kept_changed_ones_compiled() -> None:
    clusters = {name: UpstreamCluster(name, ()) for name in ("a", "b")}
    reuse = CompiledHosts()
    first = _vhosts(_compile(_config(80, gen="1"), clusters, reuse))
    second = _vhosts(_compile(_config(80, gen="2"), clusters, reuse))
    assert second[b"a.test"] is first[b"a.test"]
    assert second[b"c.test"] is first[b"c.test"]
    assert second[b"b.test"] is not first[b"b.test"]
    assert [r.name for r in second[b"b.test"].rules] == ["b2"]


def test_a_new_cluster_object_recompiles_the_hosts_that_use_it() -> None:
    clusters = {name: UpstreamCluster(name, ()) for name in ("a", "b")}
    reuse = CompiledHosts()
    first = _vhosts(_compile(_config(80, gen="1"), clusters, reuse))
    clusters["b"] = UpstreamCluster("b", ())
    second = _vhosts(_compile(_config(80, gen="1"), clusters, reuse))
    assert second[b"a.test"] is first[b"a.test"]
    assert second[b"b.test"] is not first[b"b.test"]
    assert second[b"b.test"].rules[0].choose().cluster is clusters["b"]


def test_listener_fields_are_part_of_the_key() -> None:
    """A redirect takes the listener's port: another spec port compiles the host again."""
    clusters = {name: UpstreamCluster(name, ()) for name in ("a", "b")}
    reuse = CompiledHosts()
    first = _vhosts(_compile(_config(80, gen="1"), clusters, reuse))
    second = _vhosts(_compile(_config(80, gen="1", spec_port=8080), clusters, reuse))
    assert second[b"c.test"] is not first[b"c.test"]


def test_errors_are_reported_again_when_a_host_is_kept() -> None:
    cfg = simple_config(80, (rule("r", backends=(to("missing"),)),))
    reuse = CompiledHosts()
    assert _compile(cfg, {}, reuse).errors == ["r: unknown cluster 'missing'"]
    assert _compile(cfg, {}, reuse).errors == ["r: unknown cluster 'missing'"]


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=1.0)


async def test_new_endpoints_reach_traffic_under_an_unchanged_virtual_host(
    dataplane: DataPlane,
) -> None:
    """Same IR virtual host, new endpoints for its cluster: requests go to the new ones."""
    one = await start_echo("127.0.0.1", 0, name="one")
    two = await start_echo("127.0.0.1", 0, name="two")
    try:
        port = free_port()
        routes = (rule("r", backends=(to("svc"),)),)
        for server, version in ((one, 1), (two, 2), (one, 3)):
            endpoint = ("127.0.0.1", server.sockets[0].getsockname()[1])
            cfg = simple_config(port, routes, {"svc": [endpoint]}, version=version)
            assert await dataplane.apply(cfg) == {"default/gw/http": None}
            response = await request("127.0.0.1", port)
            assert response.json()["pod"] == ("one" if server is one else "two")
    finally:
        one.close()
        two.close()


def test_the_same_virtual_host_objects_are_kept_while_the_listener_shape_holds() -> None:
    """The control plane and ir.delta hand over the very same objects: found by identity
    over many configurations, and compiled again when the listener's shape changes."""
    clusters = {name: UpstreamCluster(name, ()) for name in ("a", "b")}
    reuse = CompiledHosts()
    hosts = _config(80, gen="1").gateways[0].listeners[0].virtual_hosts

    def same_hosts(spec_port: int) -> ir.Config:
        return config((listener(80, hosts, spec_port=spec_port),), {"a": [], "b": []})

    first = _vhosts(_compile(same_hosts(80), clusters, reuse))
    for _ in range(3):
        again = _vhosts(_compile(same_hosts(80), clusters, reuse))
        assert all(again[name] is first[name] for name in first)
    moved = _vhosts(_compile(same_hosts(8080), clusters, reuse))  # redirects use spec_port
    assert all(moved[name] is not first[name] for name in first)
    back = _vhosts(_compile(same_hosts(8080), clusters, reuse))
    assert all(back[name] is moved[name] for name in moved)
