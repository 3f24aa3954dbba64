"""Memory: pydantic's per-instance bookkeeping, shared between the frozen models.

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph).
``parse_object`` calls :func:`compact` on every model it validated.

Why: besides its field values, every pydantic model instance carries a
``__pydantic_fields_set__`` (a ``set`` of the field names given in the input, 216 bytes
and up) and, with ``extra="allow"``, an ``__pydantic_extra__`` dict. A manifest of one
HTTPRoute is about twenty model instances (rules, matches, paths, backendRefs, ...); at
5,000 routes the Snapshot held 107,000 of them, and those sets alone were 32 MB, a
ninth of the control plane's memory, all repeating a few hundred distinct name sets.

What makes sharing safe: every model here is frozen, so pydantic never adds a name to
an instance's fields set in place (assignment raises first); ``model_copy`` copies the
set and the extras before updating them. So instances with equal name sets can share
one set, and instances without unknown fields one empty extras dict: equality,
``model_dump(exclude_unset=...)`` and copies behave as before (tests/resources/
test_compact.py). Field values themselves are never touched.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

# One set per distinct group of given field names. Bounded: past this many groups (only
# reachable with unusual input) new groups simply are not shared.
_MAX_SHARED = 10_000
_shared_fields_sets: dict[frozenset[str], set[str]] = {}
_NO_EXTRA: dict[str, Any] = {}
_nesting: dict[type[BaseModel], tuple[str, ...]] = {}


def compact(model: BaseModel) -> bool:
    """Share the bookkeeping of ``model`` and every model inside it; return whether any of
    them holds unknown fields (a non-empty ``__pydantic_extra__``, left as it is)."""
    unknown = share_bookkeeping(model)
    values = model.__dict__
    for name in _nesting_fields(type(model)):
        value = values[name]
        if value is not None and _compact_value(value):
            unknown = True
    return unknown


def _nesting_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``cls`` whose type can hold models (the walk skips the others)."""
    names = _nesting.get(cls)
    if names is None:
        fields = cls.model_fields.items()
        names = _nesting[cls] = tuple(n for n, f in fields if _may_hold_models(f.annotation))
    return names


def _may_hold_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_may_hold_models(arg) for arg in typing.get_args(annotation))


def share_bookkeeping(model: BaseModel) -> bool:
    """:func:`compact` for ``model`` alone (not the models inside it), e.g. a copy made
    by ``model_copy``; return whether it holds unknown fields."""
    extra = model.__pydantic_extra__
    if extra:
        unknown = True
    else:
        unknown = False
        if extra is not None and extra is not _NO_EXTRA:
            object.__setattr__(model, "__pydantic_extra__", _NO_EXTRA)
    given = model.__pydantic_fields_set__
    key = frozenset(given)
    shared = _shared_fields_sets.get(key)
    if shared is None and len(_shared_fields_sets) < _MAX_SHARED:
        shared = _shared_fields_sets[key] = set(key)
    if shared is not None and shared is not given:
        object.__setattr__(model, "__pydantic_fields_set__", shared)
    return unknown


def _compact_value(value: Any) -> bool:
    if isinstance(value, BaseModel):
        return compact(value)
    unknown = False
    items = value.values() if isinstance(value, dict) else value
    for item in items:
        if isinstance(item, BaseModel | list | dict) and _compact_value(item):
            unknown = True
    return unknown
