"""Compiled virtual hosts kept from one configuration to the next.

Place in the pipeline: ``ir.Config`` -> :func:`turnout.dataplane.router.compile_routes`
(with a ``CompiledHosts``) -> ``RouteTable``. A new configuration usually differs from
the previous one in a virtual host or two; at thousands of routes recompiling every rule
(matchers, regexes, header edits) is most of what applying it costs. A compiled
``VirtualHostTable`` is a function of:

* the IR ``VirtualHost`` (compared by value; the control plane hands over the very
  same object when it is unchanged, which makes the lookup an identity hit);
* its ``Listener`` apart from the virtual hosts (protocol and port shape redirects);
* the upstream cluster objects its rules looked up by name, by identity (the data plane
  keeps a cluster's object while its IR is unchanged, see ``DataPlane``).

Each entry records the cluster lookups and the errors its compilation produced, and is
reused only while every lookup gives the same object; the errors are reported again.
Entries not used by one configuration are dropped at the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from turnout import ir

if TYPE_CHECKING:
    from turnout.dataplane.router import VirtualHostTable
    from turnout.dataplane.upstream import UpstreamCluster

Compile = Callable[
    [ir.VirtualHost, ir.Listener, Mapping[str, "UpstreamCluster"], list[str]],
    "VirtualHostTable",
]


class _Recording(Mapping[str, "UpstreamCluster"]):
    """The clusters mapping, remembering every name looked up and what it gave."""

    def __init__(self, clusters: Mapping[str, UpstreamCluster]) -> None:
        self._clusters = clusters
        self.seen: dict[str, UpstreamCluster | None] = {}

    def __getitem__(self, name: str) -> UpstreamCluster:
        found = self._clusters.get(name)
        self.seen[name] = found
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        raise TypeError("compiling a virtual host looks clusters up by name only")

    def __len__(self) -> int:
        return len(self._clusters)


@dataclass(frozen=True, slots=True)
class _Compiled:
    table: VirtualHostTable
    clusters: tuple[tuple[str, UpstreamCluster | None], ...]
    errors: tuple[str, ...]


class CompiledHosts:
    """Kept by a DataPlane across configurations; ``begin`` once per configuration."""

    def __init__(self) -> None:
        self._previous: dict[tuple[ir.Listener, ir.VirtualHost], _Compiled] = {}
        self._current: dict[tuple[ir.Listener, ir.VirtualHost], _Compiled] = {}

    def begin(self) -> None:
        self._previous, self._current = self._current, {}

    def virtual_host(
        self,
        listener: ir.Listener,
        vhost: ir.VirtualHost,
        clusters: Mapping[str, UpstreamCluster],
        errors: list[str],
        compile_vhost: Compile,
    ) -> VirtualHostTable:
        """``compile_vhost(vhost, listener, clusters, errors)``, or its last result."""
        key = (msgspec.structs.replace(listener, virtual_hosts=()), vhost)
        found = self._current.get(key) or self._previous.get(key)
        if found is None or any(clusters.get(name) is not c for name, c in found.clusters):
            recording = _Recording(clusters)
            own_errors: list[str] = []
            table = compile_vhost(vhost, listener, recording, own_errors)
            found = _Compiled(table, tuple(recording.seen.items()), tuple(own_errors))
        self._current[key] = found
        errors.extend(found.errors)
        return found.table
