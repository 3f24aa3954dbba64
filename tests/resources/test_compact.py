"""Parsed models share pydantic's bookkeeping, and behave exactly as unshared ones."""

from __future__ import annotations

import copy
from typing import Any

from tests.resources.docs import backend, route_doc
from turnout.resources import HTTPRoute, parse_object
from turnout.resources.compact import compact

RULE = {"matches": [{"path": {"type": "PathPrefix", "value": "/a"}}], "backendRefs": [backend()]}


def parsed(doc: dict[str, Any]) -> HTTPRoute:
    result = parse_object(copy.deepcopy(doc))
    assert isinstance(result.obj, HTTPRoute), result.errors
    return result.obj


def test_models_from_different_documents_share_their_fields_sets() -> None:
    a, b = parsed(route_doc(RULE)), parsed(route_doc(RULE, hostnames=["x.test"]))
    assert a.metadata.__pydantic_fields_set__ is b.metadata.__pydantic_fields_set__
    rule_a, rule_b = a.spec.rules[0], b.spec.rules[0]
    assert rule_a.__pydantic_fields_set__ is rule_b.__pydantic_fields_set__
    assert rule_a.__pydantic_extra__ is rule_b.__pydantic_extra__ == {}
    # Different given fields, different sets.
    assert a.spec.__pydantic_fields_set__ == {"parent_refs", "rules"}
    assert b.spec.__pydantic_fields_set__ == {"parent_refs", "rules", "hostnames"}


def test_shared_models_compare_dump_and_copy_like_unshared_ones() -> None:
    doc = route_doc(RULE)
    shared = parsed(doc)
    plain = HTTPRoute.model_validate(copy.deepcopy(doc))  # not compacted
    assert shared == plain
    assert shared.model_dump(exclude_unset=True) == plain.model_dump(exclude_unset=True)
    assert shared.model_dump(by_alias=True) == plain.model_dump(by_alias=True)
    # model_copy(update=...) adds to the copy's own set, never to the shared one.
    other = parsed(doc)
    meta = shared.metadata.model_copy(update={"uid": "u-1"})
    assert "uid" in meta.model_fields_set
    assert "uid" not in other.metadata.model_fields_set
    assert "uid" not in shared.metadata.model_fields_set
    assert other.metadata.model_dump(exclude_unset=True) == {"name": "web", "namespace": "apps"}


def test_unknown_fields_are_still_found_and_reported() -> None:
    rule = {**RULE, "backendRefs": [backend(future="x")]}
    result = parse_object(route_doc(rule, shinyNew=1))
    assert isinstance(result.obj, HTTPRoute)
    assert sorted(w.path for w in result.warnings) == [
        "spec.rules[0].backendRefs[0].future",
        "spec.shinyNew",
    ]
    assert result.obj.spec.rules[0].backend_refs[0].__pydantic_extra__ == {}
    plain = HTTPRoute.model_validate(route_doc(RULE))
    assert compact(plain) is False
    assert compact(HTTPRoute.model_validate(route_doc(rule))) is True
