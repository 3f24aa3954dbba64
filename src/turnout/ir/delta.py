"""What changed between two IR configurations, to send data-plane workers only that.

Place in the pipeline: ir.build -> IR -> **delta** -> worker processes (turnout.workers
sends it, turnout.dataplane.worker applies it). At 5,000 routes the whole IR is 2 MB of
msgpack: encoding it, decoding it in every worker and allocating its objects there took
more time than compiling the one route that changed. ``diff`` keeps what the worker
already has by reference:

* a virtual host that is the very same object as one of the previous configuration's
  listener of the same name (``ir.build`` reuses unchanged virtual hosts, see
  ir/reuse.py) is sent as its index there;
* a cluster equal to the previous one of its name is sent as its name only.

Everything else (gateways, listeners without their virtual hosts, new virtual hosts and
clusters) is sent in full. ``patch(previous, diff(previous, config))`` equals ``config``
(tests/ir/test_delta.py), and it reuses the previous objects, so the worker's caches
keyed by them (dataplane/reuse.py) hit.
"""

from __future__ import annotations

import msgspec

from turnout.ir import model as ir


class ListenerDelta(msgspec.Struct, frozen=True):
    listener: ir.Listener  # with virtual_hosts=()
    # Each virtual host in order: new ones in full, kept ones as their index in the
    # previous configuration's listener of the same name.
    virtual_hosts: tuple[ir.VirtualHost | int, ...]


class GatewayDelta(msgspec.Struct, frozen=True):
    gateway: ir.Gateway  # with listeners=()
    listeners: tuple[ListenerDelta, ...]


class ConfigDelta(msgspec.Struct, frozen=True):
    base_version: int  # the configuration this delta applies to
    version: int
    gateways: tuple[GatewayDelta, ...]
    cluster_names: tuple[str, ...]  # every cluster, in order
    clusters: dict[str, ir.Cluster]  # the new or changed ones
    session_key: str = ""


def diff(previous: ir.Config, config: ir.Config) -> ConfigDelta:
    """``config`` as a delta against ``previous`` (which the receiver holds)."""
    listeners = {
        listener.name: {id(vhost): i for i, vhost in enumerate(listener.virtual_hosts)}
        for gateway in previous.gateways
        for listener in gateway.listeners
    }
    gateways = tuple(
        GatewayDelta(
            msgspec.structs.replace(gateway, listeners=()),
            tuple(
                _listener(listener, listeners.get(listener.name, {}))
                for listener in gateway.listeners
            ),
        )
        for gateway in config.gateways
    )
    changed = {
        name: cluster
        for name, cluster in config.clusters.items()
        if (old := previous.clusters.get(name)) is None or (old is not cluster and old != cluster)
    }
    return ConfigDelta(
        base_version=previous.version,
        version=config.version,
        gateways=gateways,
        cluster_names=tuple(config.clusters),
        clusters=changed,
        session_key=config.session_key,
    )


def _listener(listener: ir.Listener, kept: dict[int, int]) -> ListenerDelta:
    vhosts = tuple(kept.get(id(vhost), vhost) for vhost in listener.virtual_hosts)
    return ListenerDelta(msgspec.structs.replace(listener, virtual_hosts=()), vhosts)


def patch(previous: ir.Config, delta: ConfigDelta) -> ir.Config:
    """The configuration ``delta`` describes; ``previous`` must be its base."""
    if previous.version != delta.base_version:
        raise ValueError(
            f"configuration {delta.version} is a delta against {delta.base_version}, "
            f"and the data plane has {previous.version}"
        )
    listeners = {
        listener.name: listener.virtual_hosts
        for gateway in previous.gateways
        for listener in gateway.listeners
    }
    try:
        return _patch(previous, delta, listeners)
    except (IndexError, KeyError) as exc:  # a delta not made against `previous`
        raise ValueError(f"configuration {delta.version}: bad delta ({exc!r})") from exc


def _patch(
    previous: ir.Config, delta: ConfigDelta, listeners: dict[str, tuple[ir.VirtualHost, ...]]
) -> ir.Config:
    gateways = tuple(
        msgspec.structs.replace(
            gateway.gateway,
            listeners=tuple(_patched(entry, listeners) for entry in gateway.listeners),
        )
        for gateway in delta.gateways
    )
    clusters = {
        name: delta.clusters[name] if name in delta.clusters else previous.clusters[name]
        for name in delta.cluster_names
    }
    return ir.Config(
        version=delta.version,
        gateways=gateways,
        clusters=clusters,
        session_key=delta.session_key,
    )


def _patched(entry: ListenerDelta, previous: dict[str, tuple[ir.VirtualHost, ...]]) -> ir.Listener:
    kept = previous.get(entry.listener.name, ())
    vhosts = tuple(kept[v] if isinstance(v, int) else v for v in entry.virtual_hosts)
    return msgspec.structs.replace(entry.listener, virtual_hosts=vhosts)
