"""parse_object never raises: any JSON-like input gives a result, maybe with errors."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.resources.docs import gateway_doc, route_doc
from turnout.resources import KINDS, parse_object

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=40,
)
field_names = st.sampled_from(
    [
        "spec",
        "rules",
        "matches",
        "path",
        "type",
        "value",
        "filters",
        "backendRefs",
        "port",
        "listeners",
        "tls",
        "name",
        "namespace",
        "metadata",
        "parentRefs",
        "requestRedirect",
        "hostname",
        "protocol",
        "weight",
        "timeouts",
        "labels",
        "data",
        "ports",
        "endpoints",
    ]
)
structured = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(field_names, children, max_size=5)
    ),
    max_leaves=40,
)


def _check(doc: Any) -> None:
    result = parse_object(doc)
    assert (result.obj is None) == bool(result.errors) or result.ignored
    for problem in result.errors + result.warnings:
        assert isinstance(problem.path, str) and problem.message


@given(st.sampled_from(sorted(KINDS)), json_like)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_random_documents(kind: str, body: Any) -> None:
    _check(
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind, "metadata": body, "spec": body}
    )
    _check(
        {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}, "spec": body, "data": body}
    )


@given(structured)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_specs(spec: Any) -> None:
    for base in (route_doc(), gateway_doc()):
        _check({**base, "spec": spec})
        if isinstance(spec, dict):
            _check({**base, "spec": {**base["spec"], **spec}})


@given(json_like)
def test_any_top_level_value(value: Any) -> None:
    _check(value)
