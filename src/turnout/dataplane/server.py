"""server: the data plane's public face -- binds listener sockets and applies configurations.

Place in the pipeline: the control plane (or a worker process receiving msgpack) calls
:meth:`DataPlane.apply` with each new ``ir.Config``. ``apply`` compiles it with
:mod:`turnout.dataplane.router`, opens the sockets that are new, swaps the routing tables of
the sockets that stay, and closes the ones that went away; connections are served by
:mod:`turnout.dataplane.http1`. Upstream connection pools outlive configurations: an
endpoint that stays keeps its warm keep-alive connections.

HTTPS listeners share one socket per (address, port) too; :mod:`turnout.dataplane.tls`
picks the listener and certificate by SNI. Their socket is created once with a context
whose SNI callback reads the socket's current table, so swapping the table also swaps
certificates (rotation) without closing the socket or any connection.

Order matters in ``apply``: every new socket is bound *before* any table is swapped, and
the swap itself has no ``await`` in it, so all sockets move to the new configuration at
the same instant; a request keeps the table it was routed with.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
from collections.abc import Mapping

from turnout import ir
from turnout.dataplane import tls
from turnout.dataplane.http1 import ClientConnection, SocketState
from turnout.dataplane.l4 import L4_PROTOCOLS, L4DataPlane
from turnout.dataplane.limits import DEFAULT_LIMITS, Limits
from turnout.dataplane.reuse import CompiledHosts
from turnout.dataplane.router import (
    ListenerTable,
    RouteTable,
    SocketKey,
    SocketTable,
    compile_listener,
    compile_routes,
)
from turnout.dataplane.snapshot import Snapshot, take
from turnout.dataplane.stats import STATS, StatusCounts
from turnout.dataplane.upstream import IDLE_CLOCK, EndpointPool, UpstreamCluster
from turnout.dataplane.upstream_h2 import H2EndpointPool
from turnout.dataplane.upstream_tls import UpstreamTLS, UpstreamTLSCache

log = logging.getLogger(__name__)

IDLE_UPSTREAM_TIMEOUT = 30.0  # close pooled upstream connections idle longer than this
_SWEEP_INTERVAL = 5.0
_LISTEN_BACKLOG = 1024
# Counts of clusters no longer configured kept at least (DataPlane._forget_gone_cluster_stats).
_GONE_CLUSTER_STATS = 64


class _BoundSocket:
    __slots__ = ("context", "server", "state", "tls")

    def __init__(
        self,
        server: asyncio.Server,
        state: SocketState,
        *,
        tls: bool,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.server = server
        self.state = state
        self.tls = tls  # serves HTTPS listeners: its table must stay a TLSSocketTable
        self.context = context  # the TLS socket's context (client certificate requests)


class DataPlane:
    """HTTP/1.1 and HTTPS listeners and routing for one process."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits  # given to every socket and endpoint pool (turnout run flags)
        self._sockets: dict[SocketKey, _BoundSocket] = {}
        self._retired: list[SocketState] = []  # closed sockets whose connections still drain
        # Keyed by endpoint and TLS settings: TLS and plaintext connections to one
        # address never share a pool.
        self._pools: dict[tuple[str, int, UpstreamTLS | None], EndpointPool] = {}
        self._upstream_tls = UpstreamTLSCache()
        self._table: RouteTable | None = None
        self._lock = asyncio.Lock()
        self._sweeper: asyncio.Task[None] | None = None
        self._certificates = tls.CertificateCache()
        # Kept across configurations: unchanged parts are not compiled again.
        self._cluster_objects: dict[str, tuple[ir.Cluster, UpstreamCluster]] = {}
        self._compiled_hosts = CompiledHosts()
        self._l4 = L4DataPlane(limits.udp_idle_timeout)  # TCP, TLS and UDP listeners (l4.py)
        # Per cluster name, its response counts (stats.py), given to every UpstreamCluster
        # of that name: counts survive a cluster rebuilt by a new configuration. Kept for a
        # while when a cluster goes away (a counter must not go back if it comes again),
        # not forever (see _forget_gone_cluster_stats).
        self._cluster_stats: dict[str, StatusCounts] = {}

    def stats_snapshot(self) -> Snapshot:
        """This process's data-plane counters (turnout.dataplane.stats), and the client
        connections open now: HTTP/1.1, HTTPS and HTTP/2 ones of every socket, including
        sockets closed by a reload whose connections still drain (not the L4 ones, nor
        connections upgraded to a tunnel, which leave their socket's set)."""
        states = [bound.state for bound in self._sockets.values()] + self._retired
        active = sum(len(state.connections) for state in states)
        return take(STATS, self._cluster_stats, active)

    def _cluster(self, name: str, pools: tuple[EndpointPool, ...]) -> UpstreamCluster:
        counts = self._cluster_stats.get(name)
        if counts is None:
            counts = self._cluster_stats[name] = StatusCounts()
        return UpstreamCluster(name, pools, counts)

    @property
    def table(self) -> RouteTable | None:
        """The routing table of the last applied configuration."""
        return self._table

    async def apply(self, config: ir.Config) -> dict[str, str | None]:
        """Serve ``config``; per listener name, None when serving or why it is not."""
        async with self._lock:
            clusters, cluster_errors = self._kept_clusters(config)  # pools outlive configs
            # Gateways with a backend client certificate get TLS clusters of their own.
            by_gateway = self._gateway_clusters(config, clusters, cluster_errors)
            self._upstream_tls.done()
            self._compiled_hosts.begin()
            table = compile_routes(config, clusters, self._compiled_hosts, by_gateway)
            table.errors.extend(cluster_errors)
            for error in table.errors:  # such a rule answers 500 (see router.compile_routes)
                log.error("route not served as configured: %s", error)
            tls_errors = self._add_tls_sockets(config, clusters, table, by_gateway)
            bind_errors = await self._bind_new(table)  # no swap yet: a bind may await
            self._swap(table)  # synchronous: atomic for every socket
            self._close_removed(table)
            self._close_unused_pools([clusters, *by_gateway.values()])
            self._forget_gone_cluster_stats(config)
            self._table = table
            if self._sweeper is None:
                self._sweeper = asyncio.get_running_loop().create_task(self._sweep_idle())
            results = _listener_results(config, bind_errors, tls_errors)
            results.update(await self._l4.apply(config))
            return results

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish for up to ``drain_timeout``."""
        async with self._lock:
            states = [bound.state for bound in self._sockets.values()] + self._retired
            for bound in self._sockets.values():
                bound.server.close()
            self._sockets.clear()
            self._retired = []
            await self._l4.close()
            connections = [conn for state in states for conn in state.connections]
            for conn in connections:
                conn.shutdown()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + drain_timeout
            while any(state.connections for state in states) and loop.time() < deadline:
                await asyncio.sleep(0.02)
            for state in states:
                for conn in list(state.connections):
                    conn.abort()
            if self._sweeper is not None:
                self._sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sweeper
                self._sweeper = None
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
            self._cluster_objects = {}  # their pools are closed: never keep them

    # --- apply phases ---------------------------------------------------------------------------

    def _kept_clusters(self, config: ir.Config) -> tuple[dict[str, UpstreamCluster], list[str]]:
        """``_clusters``, keeping the previous object of each cluster whose IR is
        unchanged, so compiled virtual hosts that use it can be kept too (reuse.py)."""
        # A plain HTTP/1.1 cluster with the same IR keeps its object without a look at
        # its pools (they are alive: it uses them); at thousands of clusters that was
        # most of applying a one-route change. Clusters with TLS go through _clusters,
        # which also marks their TLS contexts as in use.
        kept: dict[str, UpstreamCluster] = {}
        changed: dict[str, ir.Cluster] = {}
        for name, cluster in config.clusters.items():
            previous = self._cluster_objects.get(name)
            plain = cluster.tls is None and cluster.protocol == "http1"
            if plain and previous is not None and previous[0] == cluster:
                kept[name] = previous[1]
                continue
            changed[name] = cluster
        built, errors = self._clusters(changed)
        for name, upstream in built.items():
            previous = self._cluster_objects.get(name)
            kept[name] = (
                previous[1] if previous is not None and previous[0] == changed[name] else upstream
            )
        clusters = {name: kept[name] for name in config.clusters}
        self._cluster_objects = {
            name: (config.clusters[name], upstream) for name, upstream in clusters.items()
        }
        return clusters, errors

    def _clusters(
        self, wanted: Mapping[str, ir.Cluster]
    ) -> tuple[dict[str, UpstreamCluster], list[str]]:
        clusters = {}
        errors: list[str] = []
        for name, cluster in wanted.items():
            pools = []
            tls = None
            if cluster.tls is not None:
                try:
                    tls = self._upstream_tls.get(cluster.tls, None)
                except (ssl.SSLError, OSError, ValueError) as exc:
                    # No pools: requests get 503, never plaintext.
                    errors.append(f"cluster {name}: cannot originate TLS: {exc}")
                    clusters[name] = self._cluster(name, ())
                    continue
            if cluster.protocol == "http1":
                pools += self._http1_pools(cluster, tls)
            elif cluster.protocol in ("h2c", "h2"):
                pools += self._h2c_pools(cluster, tls)
            clusters[name] = self._cluster(name, tuple(pools))
        return clusters, errors

    def _http1_pools(self, cluster: ir.Cluster, tls: UpstreamTLS | None) -> list[EndpointPool]:
        pools: list[EndpointPool] = []
        for endpoint in cluster.endpoints:
            key = (endpoint.address, endpoint.port, tls)
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = EndpointPool(
                    endpoint.address, endpoint.port, limits=self.limits, tls=tls
                )
            pools.append(pool)
        return pools

    def _gateway_clusters(
        self, config: ir.Config, clusters: dict[str, UpstreamCluster], errors: list[str]
    ) -> dict[str, dict[str, UpstreamCluster]]:
        """Per Gateway with ``spec.tls.backend.clientCertificateRef``: ``clusters`` with
        its TLS clusters replaced by ones presenting its certificate (pools keyed apart)."""
        by_gateway: dict[str, dict[str, UpstreamCluster]] = {}
        for gateway in config.gateways:
            client = gateway.backend_client_certificate
            if client is None:
                continue
            mapping = dict(clusters)
            for name, cluster in config.clusters.items():
                if cluster.tls is None:
                    continue
                try:
                    tls = self._upstream_tls.get(cluster.tls, client)
                except (ssl.SSLError, OSError, ValueError) as exc:
                    errors.append(f"gateway {gateway.name}, cluster {name}: {exc}")
                    mapping[name] = self._cluster(name, ())  # 503, never without TLS
                    continue
                if cluster.protocol == "http1":
                    pools = self._http1_pools(cluster, tls)
                else:
                    pools = self._h2c_pools(cluster, tls)
                mapping[name] = self._cluster(name, tuple(pools))
            by_gateway[gateway.name] = mapping
        return by_gateway

    def _h2c_pools(self, cluster: ir.Cluster, tls: UpstreamTLS | None = None) -> list[EndpointPool]:
        """HTTP/2 endpoints (h2c, or over TLS with ``tls``): one multiplexed connection
        each (upstream_h2)."""
        pools: list[EndpointPool] = []
        for endpoint in cluster.endpoints:
            key = (f"h2c:{endpoint.address}", endpoint.port, tls)  # apart from HTTP/1.1 pools
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = H2EndpointPool(
                    endpoint.address, endpoint.port, limits=self.limits, tls=tls
                )
            pools.append(pool)
        return pools

    def _add_tls_sockets(
        self,
        config: ir.Config,
        clusters: dict[str, UpstreamCluster],
        table: RouteTable,
        by_gateway: Mapping[str, Mapping[str, UpstreamCluster]],
    ) -> dict[str, str]:
        """Compile HTTPS listeners into ``table``; per listener name, why one is not served."""
        compiled: dict[str, ListenerTable] = {}
        for gateway in config.gateways:
            gateway_clusters = by_gateway.get(gateway.name, clusters)
            for listener in gateway.listeners:
                if listener.protocol == "HTTPS":
                    compiled[listener.name] = compile_listener(
                        listener, gateway_clusters, table.errors, self._compiled_hosts
                    )
        sockets, errors = self._certificates.build(config, compiled)
        for key, socket_table in sockets.items():
            if key in table.sockets:  # the graph rejects this within a Gateway (ProtocolConflict)
                for name in socket_table.listener_names:
                    errors[name] = f"port {key[1]} on {key[0]} is served as plain HTTP"
                continue
            table.sockets[key] = socket_table
        return errors

    async def _bind_new(self, table: RouteTable) -> dict[SocketKey, str]:
        errors: dict[SocketKey, str] = {}
        loop = asyncio.get_running_loop()
        for key, socket_table in table.sockets.items():
            is_tls = isinstance(socket_table, tls.TLSSocketTable)
            bound = self._sockets.get(key)
            if bound is not None:
                if bound.tls == is_tls:
                    continue
                self._retire(key)  # HTTP became HTTPS or back: a new socket, after this one
            try:
                sock = _listening_socket(*key)
            except OSError as exc:
                errors[key] = str(exc)
                continue
            state = SocketState(socket_table, self.limits)
            context = None
            if is_tls:
                context = tls.server_context(state)
                tls.apply_verify_mode(context, socket_table)
                server = await loop.create_server(
                    functools.partial(tls.TLSClientConnection, state), sock=sock, ssl=context
                )
            else:
                server = await loop.create_server(
                    functools.partial(ClientConnection, state), sock=sock
                )
            self._sockets[key] = _BoundSocket(server, state, tls=is_tls, context=context)
        return errors

    def _swap(self, table: RouteTable) -> None:
        for key, bound in self._sockets.items():
            socket_table = table.sockets.get(key)
            if socket_table is not None:
                bound.state.table = socket_table
                if bound.context is not None:
                    tls.apply_verify_mode(bound.context, socket_table)

    def _close_removed(self, table: RouteTable) -> None:
        for key in [k for k in self._sockets if k not in table.sockets]:
            self._retire(key)
        self._retired = [state for state in self._retired if state.connections]

    def _retire(self, key: SocketKey) -> None:
        bound = self._sockets.pop(key)
        bound.server.close()  # stop accepting; connections finish what is in flight
        for conn in list(bound.state.connections):
            conn.shutdown()
        bound.state.table = SocketTable()  # later requests on kept-alive conns: 404
        self._retired.append(bound.state)

    def _forget_gone_cluster_stats(self, config: ir.Config) -> None:
        """Drop the counts of the clusters gone longest, past as many gone ones as the
        configuration has clusters (at least _GONE_CLUSTER_STATS). Cluster names churn (a
        Service per preview environment), and each one kept is memory and a stale
        /metrics series: kept forever, they grew with every cluster there ever was
        (tests/dataplane/test_leaks_apply.py)."""
        stats = self._cluster_stats
        # Every cluster of the configuration has its entry (_cluster), in insertion order.
        excess = len(stats) - len(config.clusters) - max(_GONE_CLUSTER_STATS, len(config.clusters))
        if excess <= 0:
            return  # the usual case: nothing walked
        for name in [name for name in stats if name not in config.clusters][:excess]:
            del stats[name]

    def _close_unused_pools(self, mappings: list[dict[str, UpstreamCluster]]) -> None:
        used = {
            id(pool)
            for clusters in mappings
            for cluster in clusters.values()
            for pool in cluster.pools
        }
        for key in [k for k, pool in self._pools.items() if id(pool) not in used]:
            self._pools.pop(key).retire()

    async def _sweep_idle(self) -> None:
        loop = asyncio.get_running_loop()
        IDLE_CLOCK.now = loop.time()  # the clock of releases (upstream.CoarseClock)
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL)
            IDLE_CLOCK.now = now = loop.time()
            cutoff = now - IDLE_UPSTREAM_TIMEOUT
            for pool in list(self._pools.values()):
                pool.close_idle(older_than=cutoff)


def _listening_socket(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # proto IPPROTO_TCP, not 0: accepted sockets inherit it, and asyncio only sets
    # TCP_NODELAY on sockets that say they are TCP -- without it, a response written in
    # two pieces waits for the client's delayed ACK (40 ms per HTTP/2 gRPC call).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):  # worker processes share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(_LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _listener_results(
    config: ir.Config, bind_errors: dict[SocketKey, str], tls_errors: dict[str, str]
) -> dict[str, str | None]:
    results: dict[str, str | None] = {}
    for gateway in config.gateways:
        for listener in gateway.listeners:
            if listener.protocol in L4_PROTOCOLS:
                continue  # served by L4DataPlane
            results[listener.name] = tls_errors.get(listener.name) or bind_errors.get(
                (listener.address, listener.port)
            )
    return results
