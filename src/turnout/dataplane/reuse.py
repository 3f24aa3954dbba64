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
    """Kept by a DataPlane across configurations; ``begin`` once per configuration.

    Entries are found by the identity of the virtual host first (with its listener's
    shape compared by value), then by value: hashing a virtual host walks all its rules,
    which at thousands of routes was most of applying a one-route change, while the
    control plane (in process) and ``turnout.ir.delta`` (in workers) hand over the very
    same object for an unchanged virtual host."""

    def __init__(self) -> None:
        self._previous: dict[tuple[ir.Listener, ir.VirtualHost], _Compiled] = {}
        self._current: dict[tuple[ir.Listener, ir.VirtualHost], _Compiled] = {}
        self._previous_ids: dict[int, tuple[ir.VirtualHost, ir.Listener, _Compiled]] = {}
        self._current_ids: dict[int, tuple[ir.VirtualHost, ir.Listener, _Compiled]] = {}
        self._shape: tuple[ir.Listener, ir.Listener] | None = None

    def begin(self) -> None:
        self._previous, self._current = self._current, {}
        self._previous_ids, self._current_ids = self._current_ids, {}
        self._shape = None

    def virtual_host(
        self,
        listener: ir.Listener,
        vhost: ir.VirtualHost,
        clusters: Mapping[str, UpstreamCluster],
        errors: list[str],
        compile_vhost: Compile,
    ) -> VirtualHostTable:
        """``compile_vhost(vhost, listener, clusters, errors)``, or its last result."""
        shape = self._listener_shape(listener)
        found: _Compiled | None = None
        kept = self._current_ids.get(id(vhost)) or self._previous_ids.get(id(vhost))
        if kept is not None and kept[0] is vhost and kept[1] == shape:
            found = kept[2]
        else:
            key = (shape, vhost)
            found = self._current.get(key) or self._previous.get(key)
        if found is None or any(clusters.get(name) is not c for name, c in found.clusters):
            recording = _Recording(clusters)
            own_errors: list[str] = []
            table = compile_vhost(vhost, listener, recording, own_errors)
            found = _Compiled(table, tuple(recording.seen.items()), tuple(own_errors))
        if kept is None or kept[2] is not found or kept[0] is not vhost:
            self._current[(shape, vhost)] = found  # kept entries are found by identity
        self._current_ids[id(vhost)] = (vhost, shape, found)
        errors.extend(found.errors)
        return found.table

    def _listener_shape(self, listener: ir.Listener) -> ir.Listener:
        """The listener without its virtual hosts (protocol and port shape redirects),
        made once per listener rather than once per virtual host."""
        if self._shape is None or self._shape[0] is not listener:
            self._shape = (listener, msgspec.structs.replace(listener, virtual_hosts=()))
        return self._shape[1]
