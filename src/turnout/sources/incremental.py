"""Incremental loads of the files source: where a reported path goes, and the Snapshot
patched for the objects that changed.

Place in the pipeline: watcher -> **sources** -> Snapshot -> graph. ``FileSource.load``
with the paths a watcher reported uses these to avoid listing, stat'ing and sorting
thousands of unchanged files (sources/files.py has the theory of operation).
"""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from turnout.resources import Resource
from turnout.sources.snapshot import Snapshot

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name); namespace "" for cluster-scoped kinds."""

OrderKey = tuple[int, tuple[str, ...]]
"""Where ``discover`` lists a file: (index of the given path, parts below it)."""

# More changed paths than this in one batch: list and stat everything (a checkout, a
# tool rewriting the directory); the per-path bookkeeping would not be cheaper.
INCREMENTAL_LIMIT = 256

Root = tuple[Path, str, bool]
"""A given path: (absolute, as given and normalised, is a directory)."""


class Listing:
    """The manifest files of the last load, in the order ``discover`` lists them."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.roots: list[Root] = [
            (Path(p).absolute(), str(Path(p)), Path(p).is_dir()) for p in paths
        ]
        self.names: list[str] | None = None  # None: nothing listed yet
        self._keys: list[OrderKey] | None = None  # computed when a file is added

    def reset(self, names: list[str]) -> None:
        """What a full discovery found."""
        self.names, self._keys = names, None

    def update(
        self, changed_paths: Collection[str | Path], suffixes: Collection[str]
    ) -> tuple[set[str], set[str]] | None:
        """Take the changed paths into account; say which files to read again and which
        are gone. None (the listing left as it was): a full discovery is needed.

        A changed path that is a known file is read again (or dropped when it is gone);
        a new manifest file (by ``suffixes``) is placed where ``discover`` would list it
        (a directory walk sorted by name is the lexicographic order of the path parts).
        Anything else (a directory, a path named explicitly, a file below two roots, too
        many paths to be worth it) needs the full discovery.
        """
        if self.names is None or len(changed_paths) > INCREMENTAL_LIMIT:
            return None
        names = list(self.names)
        keys = None if self._keys is None else list(self._keys)
        forced: set[str] = set()
        removed: set[str] = set()
        for raw in changed_paths:
            located = locate(self.roots, Path(raw))
            if located is None:
                return None
            key, name = located
            if name in names:
                if os.path.isfile(name):
                    forced.add(name)
                elif os.path.lexists(name):
                    return None  # a file replaced by a directory (or worse)
                else:
                    removed.add(name)
                    index = names.index(name)
                    del names[index]
                    if keys is not None:
                        del keys[index]
            elif os.path.isfile(name):
                if Path(name).suffix not in suffixes:
                    continue  # discover does not list it either
                if keys is None:
                    keys = [order_key(self.roots, Path(n)) for n in names]
                index = bisect.bisect(keys, key)
                keys.insert(index, key)
                names.insert(index, name)
                forced.add(name)
            elif os.path.lexists(name):
                return None  # a new directory: walk it
            elif any(known.startswith(name + os.sep) for known in names):
                return None  # a directory removed (or renamed away) with its files
            # else: created and removed again before we looked; nothing to do
        self.names, self._keys = names, keys
        return forced, removed


def order_key(roots: Sequence[Root], path: Path) -> OrderKey:
    """``path``'s place in discover()'s order (it lists the given paths in turn)."""
    absolute = path.absolute()
    for index, (root, _, is_dir) in enumerate(roots):
        if absolute == root:
            return (index, ())
        if is_dir and root in absolute.parents:
            return (index, absolute.relative_to(root).parts)
    return (len(roots), absolute.parts)


def locate(roots: Sequence[Root], path: Path) -> tuple[OrderKey, str] | None:
    """The load-order key and file name of a reported absolute ``path``, when it lies
    below exactly one given directory and not in a dot-named one; else None."""
    path = path.absolute()
    found: list[tuple[OrderKey, str]] = []
    for index, (absolute, given, is_dir) in enumerate(roots):
        if path == absolute:
            return None  # a given path itself: rediscover (it may have appeared)
        if not is_dir or absolute not in path.parents:
            continue
        parts = path.relative_to(absolute).parts
        if any(part.startswith(".") for part in parts):
            return None  # discover skips these; the watcher should not report them
        found.append(((index, parts), str(Path(given).joinpath(*parts))))
    return found[0] if len(found) == 1 else None


SNAPSHOT_FIELDS = {
    "GatewayClass": "gateway_classes",
    "Namespace": "namespaces",
    "Gateway": "gateways",
    "HTTPRoute": "http_routes",
    "GRPCRoute": "grpc_routes",
    "ListenerSet": "listener_sets",
    "TCPRoute": "tcp_routes",
    "TLSRoute": "tls_routes",
    "UDPRoute": "udp_routes",
    "ReferenceGrant": "reference_grants",
    "Service": "services",
    "EndpointSlice": "endpoint_slices",
    "Secret": "secrets",
    "BackendTLSPolicy": "backend_tls_policies",
    "ConfigMap": "config_maps",
}


CLUSTER_SCOPED_KINDS = frozenset({"GatewayClass", "Namespace"})  # keyed by name alone


def snapshot_of(objects: Iterable[Resource]) -> Snapshot:
    """A Snapshot of ``objects``, each kind's dict in the order given."""
    snapshot = Snapshot()
    for obj in objects:
        entries: dict[Any, Resource] = getattr(snapshot, SNAPSHOT_FIELDS[obj.kind])
        entries[obj.metadata.name if obj.kind in CLUSTER_SCOPED_KINDS else obj.key] = obj
    return snapshot


def patched_snapshot(
    snapshot: Snapshot, changed: Mapping[ObjectKey, Resource | None]
) -> Snapshot | None:
    """``snapshot`` with the changed objects replaced, when no key came or went (its
    dicts keep their order; a full build sorts them); else None. Never mutates
    ``snapshot``: others may still read it."""
    replaced: dict[str, dict[Any, Resource]] = {}
    for key, obj in changed.items():
        if obj is None:
            return None
        field_name = SNAPSHOT_FIELDS[key[0]]
        if field_name not in replaced:
            replaced[field_name] = dict(getattr(snapshot, field_name))
        entries = replaced[field_name]
        entry = key[2] if key[0] in CLUSTER_SCOPED_KINDS else key[1:]
        if entry not in entries:
            return None
        entries[entry] = obj
    return dataclasses.replace(snapshot, **replaced)  # type: ignore[arg-type]
