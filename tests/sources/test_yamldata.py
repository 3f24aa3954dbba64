"""The fast YAML path gives exactly what yaml.load_all + _to_json_data give, or steps aside.

``yamldata.documents`` returns None for whatever it does not build itself; the files
source then takes the reference path. Whenever it returns data, that data must equal the
reference's, types included (``1`` is not ``True``, ``1.0`` is not ``1``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnout.sources import FileSource, yamldata
from turnout.sources.reading import MAX_VALUES_PER_FILE, _to_json_data, read_documents


def reference(text: str, max_values: int = MAX_VALUES_PER_FILE) -> Any:
    return _to_json_data(list(yaml.load_all(text, Loader=yaml.CSafeLoader)), [max_values])


def same(a: Any, b: Any) -> bool:
    """Equal, with equal types all the way down (and NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            same(k1, k2) and same(a[k1], b[k2]) for k1, k2 in zip(a, b, strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def check_agrees(text: str, max_values: int = MAX_VALUES_PER_FILE) -> Any:
    fast = yamldata.documents(text, max_values)
    if fast is None:
        return None
    assert same(fast, reference(text, max_values)), text
    return fast


MANIFEST = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r-1
  namespace: bench
  labels: {app: "x", "n": "1"}
spec:
  parentRefs: [{name: gw, port: 80}]
  hostnames: ["h1.bench.test", '*.w1.bench.test']
  rules:
  - matches:
    - path: {type: PathPrefix, value: /svc1/api}
      headers: [{name: x-bench-tenant, value: t1}]
    backendRefs:
    - {name: svc-1, port: 80, weight: 0x10}
    timeouts: {request: 10s}
---
---
apiVersion: v1
kind: Service
metadata: {name: svc-1, namespace: bench}
spec: {ports: [{port: 80, targetPort: 8080, appProtocol: null}]}
"""


def test_a_plain_manifest_is_built_by_the_fast_path() -> None:
    docs = check_agrees(MANIFEST)
    assert docs is not None
    assert docs[1] is None  # the empty document in the middle
    assert docs[0]["spec"]["rules"][0]["backendRefs"][0]["weight"] == 16


@pytest.mark.parametrize(
    "text",
    [
        "a: yes\nb: No\nc: on\nd: ~\ne: null\nf: ''\ng: 1_000\nh: 0o17\ni: 017\nj: 0b101\n",
        "k: 1:30\nl: -.inf\nm: .NaN\nn: 1.5e3\no: +12\np: '12'\nq: !!str 12\nr: !!int '7'\n",
        "s: !!float '1'\nt: !!bool 'yes'\nu: !!null ''\n1: int key\ntrue: bool key\n~: null key\n",
        "a: 1\na: 2\nb: [1, [2, [3, {c: d}]]]\n",
        "x: &anchor {a: [1, 2]}\ny: *anchor\nz: [*anchor, *anchor]\n",
        "- a\n- b\n",
        "plain scalar document\n",
        "",
        "---\n...\n---\n",
        "'=': x\n",
        "text: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
        'unicode: \u00e9\u00e8 \U0001f600\nescaped: "\\x41\\u00e9\\t"\n',
    ],
)
def test_scalars_aliases_and_duplicates_agree_with_the_reference(text: str) -> None:
    check_agrees(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n",  # merge key
        "when: 2026-01-02T03:04:05Z\n",  # timestamp
        "day: 2026-01-02\n",
        "bad: 2026-01-00\n",  # datetime() raises ValueError
        "data: !!binary aGk=\n",
        "s: !!set {a, b}\n",
        "o: !!omap [{a: 1}]\n",
        "p: !!pairs [{a: 1}]\n",
        "x: !custom 1\n",
        "x: !!python/object:os.system ls\n",
        "? [a]\n: b\n",  # a non-scalar key
        "? {a: 1}\n: b\n",
        "a: =\n",  # a value tag outside a key
        "a: [\n",  # a syntax error
        "a: b\n---\n{\n",  # a syntax error after a good document
        "&a [*a]\n",  # a recursive alias
        "a: !!bool maybe\n",
        "a: !!int x\n",
    ],
)
def test_everything_else_steps_aside(text: str) -> None:
    assert yamldata.documents(text, MAX_VALUES_PER_FILE) is None


def test_the_value_budget_is_counted_like_the_reference() -> None:
    text = "a: [1, 2, 3]\nb: {c: 4}\n"
    # documents list 1 + mapping 1 + list 1 + 3 ints + mapping 1 + 1 int = 8 values.
    assert reference(text, 8) is not None
    assert check_agrees(text, 8) is not None
    assert yamldata.documents(text, 7) is None
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    bomb += "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n"
    assert yamldata.documents(bomb, 5_000) is None


def test_keys_and_short_strings_are_interned() -> None:
    first = yamldata.documents("apiVersion: v1\nname: bench\n", 100)
    second = yamldata.documents("apiVersion: v1\nname: bench\n", 100)
    assert first is not None and second is not None
    assert next(iter(first[0])) is next(iter(second[0]))
    assert first[0]["name"] is second[0]["name"]


def test_read_documents_reports_the_same_errors_as_before(tmp_path: Path) -> None:
    cases = {
        "syntax.yaml": ("a: [\n", "invalid YAML"),
        "date.yaml": ("a: 2026-01-00\n", "invalid YAML"),
        "loop.yaml": ("&a [*a]\n", "nested too deeply"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        docs, error = read_documents(tmp_path / name)
        assert docs == [] and error is not None and message in error.message, name


def test_a_file_with_a_merge_key_still_loads(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  <<: {namespace: apps}\n  name: cfg\n"
        "data: {a: '1'}\n"
    )
    result = FileSource([tmp_path]).load()
    assert ("apps", "cfg") in result.snapshot.config_maps


_KEYS = st.sampled_from(["a", "b", "kind", "1", "yes", "null", "~", "0x1f", "1.5", "=", "<<"])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["yes", "No", "0o17", "1:20", "2026-01-02", ".inf", "~", "", "0x_1"])
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.lists(_DATA, min_size=1, max_size=3), flow=st.sampled_from([None, True, False]))
def test_dumped_data_agrees_with_the_reference(data: list[Any], flow: bool | None) -> None:
    text = yaml.safe_dump_all(data, default_flow_style=flow, allow_unicode=True)
    check_agrees(text)


_PIECES = st.sampled_from(
    [
        "a: ",
        "b: ",
        "- ",
        "&x ",
        "*x",
        "{",
        "}",
        "[",
        "]",
        ", ",
        "\n",
        "  ",
        "---\n",
        "yes",
        "1",
        "0x1",
        "'q'",
        '"\\u00e9"',
        "? ",
        ": ",
        "<<: ",
        "!!str ",
        "!!int ",
        "2026-01-01",
        "~",
    ]
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(_PIECES, max_size=30))
def test_arbitrary_yaml_shaped_text_agrees_or_steps_aside(pieces: list[str]) -> None:
    text = "".join(pieces)
    fast = yamldata.documents(text, MAX_VALUES_PER_FILE)
    if fast is not None:
        assert same(fast, reference(text)), text
