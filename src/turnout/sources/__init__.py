"""Sources: where objects come from (files today, the API server later).

Place in the pipeline: **sources** -> Snapshot -> graph -> (status, IR) -> data plane.
A source turns manifests into validated models (``turnout.resources``), keeps the
API-server-like bookkeeping (generation, creationTimestamp, uid) and hands the graph a
read-only ``Snapshot``. The files source is ``files`` (the stateful ``FileSource``),
``reading`` (discovery, one file into documents), ``scan`` (one pass over the files:
validation, problems, last good versions) and ``loadresult`` (what a load returns);
``yamldata`` is its one-pass YAML reader for plain manifests; ``incremental`` places
the paths a watcher reported, so that a reload looks only at those.
"""

from turnout.sources.files import FileSource, load_paths
from turnout.sources.loadresult import IgnoredObject, LoadError, LoadResult, ObjectKey, Origin
from turnout.sources.snapshot import NAMESPACE_NAME_LABEL, Snapshot
from turnout.sources.watch import watch_paths

__all__ = [
    "NAMESPACE_NAME_LABEL",
    "FileSource",
    "IgnoredObject",
    "LoadError",
    "LoadResult",
    "ObjectKey",
    "Origin",
    "Snapshot",
    "load_paths",
    "watch_paths",
]
