"""YAML text -> JSON data in one pass: the files source's fast path for plain manifests.

Place in the pipeline: **sources** (``turnout.sources.reading.read_documents``) -> Snapshot.

Why this exists: with PyYAML's C loader only scanning, parsing and composing run in C;
building the Python objects (``SafeConstructor``) runs in Python, through generators,
once per node, and ``reading._to_json_data`` then walks the result again to turn YAML-only
scalars into what JSON would carry. At thousands of manifest files that construction was
the largest part of loading (45 % of ``FileSource.load`` at 1,000 routes). Here the
composed nodes are turned into JSON data directly, for the node shapes real manifests
use: mappings with scalar keys, sequences, and str / null / bool / int / float scalars
with their standard tags. Mapping keys and short strings are interned: a manifest tree
repeats the same keys and values (``apiVersion``, ``kind``, namespaces, Service names)
thousands of times, and the typed models keep the very string objects they were given.

Exactness: :func:`documents` returns None for anything else -- merge keys (``<<``),
``=`` keys, timestamps, ``!!binary``, ``!!set``/``!!omap``/``!!pairs``, unknown tags,
non-scalar keys -- and for every error (YAML syntax, alias bombs past the value budget,
nesting past the recursion limit), so the caller runs the reference path
(``yaml.load_all`` + ``_to_json_data``), which gives the same data or reports the same
error as before. When this returns data, it is the data the reference path gives: the
same scalar constructors are used (``SafeConstructor.construct_yaml_int``/``float``,
its ``bool_values``), an alias yields a copy per use as ``_to_json_data`` makes, the last
of duplicate keys wins, and every value produced counts against the same budget.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + t for t in ("str", "null", "bool", "int", "float"))
_MAP, _SEQ = _TAG + "map", _TAG + "seq"

# Strings up to this length are interned; longer ones (certificates, bodies) are rarely
# repeated, and hashing them would be wasted work.
_INTERN_MAX = 256
# Plain scalars whose implicit tag is remembered (by value); see _Loader.resolve.
_RESOLVED_MAX = 4096
_resolved: dict[str, str] = {}


class _Unusual(Exception):
    """A node this fast path does not build: the reference path decides."""


class _Loader(yaml.CSafeLoader):
    """The C loader, remembering the implicit tag of plain scalars.

    ``Resolver.resolve`` runs in Python for every scalar, trying the regular expressions
    for its first character; for a plain scalar (``implicit[0]``) with no path resolvers
    its answer depends on the value alone, and manifests repeat values a lot.
    """

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if self.yaml_path_resolvers:
            return self._resolve(kind, value, implicit)
        if kind is not ScalarNode:
            return _SEQ if kind is SequenceNode else _MAP
        if not implicit[0]:
            return _STR  # quoted (or a block scalar): BaseResolver's default scalar tag
        tag = _resolved.get(value)
        if tag is None:
            tag = self._resolve(kind, value, implicit)
            if len(_resolved) < _RESOLVED_MAX and len(value) <= _INTERN_MAX:
                _resolved[value] = tag
        return tag

    def _resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag


def documents(text: str, max_values: int) -> list[Any] | None:
    """Every document of ``text`` as JSON data (None for an empty document), or None when
    the reference path must decide (see the module docstring).

    ``max_values`` bounds the values produced, counted as ``reading._to_json_data`` counts
    them (the list of documents is one).
    """
    loader = _Loader(text)
    try:
        builder = _Builder(max_values - 1)
        out: list[Any] = []
        while loader.check_node():
            node = loader.get_node()
            out.append(None if node is None else builder.build(node))
        return out
    except Exception:  # every failure is the reference path's to report
        return None
    finally:
        loader.dispose()


class _Builder:
    """Nodes -> JSON data, with the value budget of one file."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.scalars = SafeConstructor()  # its int/float constructors, for exact semantics

    def build(self, node: Node) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _Unusual("too many values")
        cls = node.__class__
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if cls is MappingNode and node.tag == _MAP:
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                # _to_json_data leaves keys as constructed (and does not count them).
                if not isinstance(key_node, ScalarNode):
                    raise _Unusual("non-scalar key")
                out[self.scalar(key_node)] = self.build(value_node)
            return out
        if cls is SequenceNode and node.tag == _SEQ:
            return [self.build(item) for item in node.value]
        raise _Unusual(node.tag)

    def scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        value = node.value
        if tag == _STR:
            return sys.intern(value) if len(value) <= _INTERN_MAX else value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return SafeConstructor.bool_values[value.lower()]
        if tag == _INT:
            return self.scalars.construct_yaml_int(node)
        if tag == _FLOAT:
            return self.scalars.construct_yaml_float(node)
        raise _Unusual(tag)  # timestamp, binary, merge, value, set, custom tags
