"""Whatever is in a manifest file, FileSource.load() answers with errors, never raises.

Property tests over arbitrary and YAML-shaped text, plus the YAML alias bombs found while
writing them (a recursive alias raised RecursionError out of load(); nine levels of nine
aliases expanded to 387 million values).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnout.sources import FileSource
from turnout.sources.reading import MAX_VALUES_PER_FILE

GOOD = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: apps}
data: {a: "1"}
"""

_YAML_PIECES = [
    "apiVersion: gateway.networking.k8s.io/v1\n",
    "apiVersion: v1\n",
    "kind: HTTPRoute\n",
    "kind: Gateway\n",
    "kind: List\n",
    "items:\n",
    "metadata: {name: a, namespace: b}\n",
    "spec:\n",
    "  rules:\n",
    "  - ",
    "matches: [{path: {type: PathPrefix, value: /}}]\n",
    "backendRefs: [{name: s, port: 80}]\n",
    "  listeners: [{name: l, port: 80, protocol: HTTP}]\n",
    "&a ",
    "*a",
    "!!binary aGk=",
    "!!set {a, b}",
    "!!python/object:os.system",
    "2026-01-01",
    ".nan",
    "~",
    "? [a]\n: b\n",
    "{",
    "}",
    "[",
    "]",
    "- ",
    ": ",
    "\n",
    "  ",
    "---\n",
    '"\\x00"',
    "\t",
]

yaml_text = st.lists(
    st.one_of(st.sampled_from(_YAML_PIECES), st.text(max_size=8)), max_size=24
).map("".join)


def _load(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        (Path(tmp) / "good.yaml").write_text(GOOD)
        result = FileSource([tmp]).load()  # must not raise
        for error in result.errors:
            assert str(error)
        # A broken file never costs the other files their objects.
        assert any(key[0] == "ConfigMap" and key[2] == "cfg" for key in result.origins)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_text)
def test_yaml_shaped_text_never_raises(text: str) -> None:
    _load(text, ".yaml")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_never_raises(text: str) -> None:
    _load(text, ".yaml")
    _load(text, ".json")


def _errors_of(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "bomb.yaml").write_text(text)
    (tmp_path / "good.yaml").write_text(GOOD)
    result = FileSource([tmp_path]).load()
    assert ("ConfigMap", "apps", "cfg") in result.origins
    return [str(error) for error in result.errors]


def test_recursive_alias_is_an_error(tmp_path: Path) -> None:
    (error,) = _errors_of(tmp_path, "a: &x [*x]\n")
    assert "bomb.yaml" in error and "recursive alias" in error


def test_alias_expansion_is_bounded(tmp_path: Path) -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    (error,) = _errors_of(tmp_path, "\n".join(lines) + "\n")
    assert f"more than {MAX_VALUES_PER_FILE} values" in error


def test_deeply_nested_document_is_an_error(tmp_path: Path) -> None:
    (error,) = _errors_of(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nest" in error  # libyaml stops at its own depth limit (1000) first


def test_impossible_yaml_timestamp_is_an_error(tmp_path: Path) -> None:
    # Found by fuzz/manifest.py: PyYAML raised ValueError out of load().
    (error,) = _errors_of(tmp_path, "metadata: {creationTimestamp: 2026-01-00T00:00:00Z}\n")
    assert "bomb.yaml" in error and "day is out of range" in error
    (error,) = _errors_of(tmp_path, "a: 2026-13-01\n")
    assert "month must be in 1..12" in error
