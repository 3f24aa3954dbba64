"""Reloads read and parse only the files that changed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from turnout.resources import parse_object
from turnout.sources import files, scan
from turnout.sources.files import FileSource

ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: [{{name: svc, port: {port}}}]}}]
"""


def test_unchanged_files_are_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        (tmp_path / f"r{i}.yaml").write_text(ROUTE.format(name=f"r{i}", port=80))
    parsed: list[str] = []
    real = parse_object

    def counting(doc: object) -> object:
        parsed.append(doc["metadata"]["name"])  # type: ignore[index]
        return real(doc)  # type: ignore[arg-type]

    monkeypatch.setattr(scan, "parse_object", counting)
    source = FileSource([tmp_path])
    first = source.load()
    assert sorted(parsed) == ["r0", "r1", "r2"]
    parsed.clear()
    second = source.load()
    assert parsed == []
    # The very same objects: nothing was rebuilt, generations are unchanged.
    assert second.snapshot.http_routes == first.snapshot.http_routes
    target = tmp_path / "r1.yaml"
    target.write_text(ROUTE.format(name="r1", port=81))
    os.utime(target, ns=(1, 1))  # a different stamp even on coarse clocks
    third = source.load()
    assert parsed == ["r1"]
    route = third.snapshot.http_routes[("default", "r1")]
    assert route.metadata.generation == 2
    assert route.spec.rules[0].backend_refs[0].port == 81
    assert third.snapshot.http_routes[("default", "r0")].metadata.generation == 1


# --- loads of the paths a watcher reported ------------------------------------------


def _route(name: str, port: int) -> str:
    return ROUTE.format(name=name, port=port)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _summary(result: files.LoadResult) -> object:
    """What a load means, without the bookkeeping that differs between sources."""
    routes = {
        key: (route.spec.rules[0].backend_refs[0].port, result.origins[("HTTPRoute", *key)].file)
        for key, route in result.snapshot.http_routes.items()
    }
    return routes, [str(e) for e in result.errors], sorted(result.stale)


def test_only_the_reported_files_are_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(20):
        _write(tmp_path / f"r{i}.yaml", _route(f"r{i}", 80))
    source = FileSource([tmp_path])
    source.load()
    looked: list[str] = []
    real_stat = os.stat

    def stat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        looked.append(str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", stat)
    _write(tmp_path / "r3.yaml", _route("r3", 81))
    result = source.load([(tmp_path / "r3.yaml").absolute()])
    assert {p for p in looked if p.endswith(".yaml")} == {str(tmp_path / "r3.yaml")}
    assert result.changed == frozenset({("HTTPRoute", "default", "r3")})
    assert result.snapshot.http_routes[("default", "r3")].metadata.generation == 2


def test_a_file_rewritten_unchanged_changes_nothing(tmp_path: Path) -> None:
    _write(tmp_path / "r.yaml", _route("r", 80))
    source = FileSource([tmp_path])
    first = source.load()
    _write(tmp_path / "r.yaml", "# a comment now\n" + _route("r", 80))
    second = source.load([(tmp_path / "r.yaml").absolute()])
    assert second.changed == frozenset()
    key = ("default", "r")
    assert second.snapshot.http_routes[key] is first.snapshot.http_routes[key]


def test_a_new_file_takes_its_place_in_the_file_order(tmp_path: Path) -> None:
    """The first definition in file order wins, as in a full load: a new a.yaml comes
    before b.yaml even though it was added last."""
    _write(tmp_path / "b.yaml", _route("r", 80))
    _write(tmp_path / "c.yaml", _route("other", 80))
    source = FileSource([tmp_path])
    source.load()
    _write(tmp_path / "a.yaml", _route("r", 81))
    result = source.load([(tmp_path / "a.yaml").absolute()])
    assert _summary(result) == _summary(FileSource([tmp_path]).load())
    assert result.snapshot.http_routes[("default", "r")].spec.rules[0].backend_refs[0].port == 81
    assert "b.yaml" in str(result.errors[0]) and "duplicate" in str(result.errors[0])


def test_directories_renames_and_broken_files_as_a_full_load_sees_them(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "a.yaml", _route("a", 80))
    source, reference = FileSource([tmp_path]), FileSource([tmp_path])  # the latter full
    source.load()
    reference.load()
    deep = tmp_path / "sub" / "deep"
    conf, outside = tmp_path / "conf.d", tmp_path.parent / f"{tmp_path.name}-conf.d"

    def remove_deep() -> None:
        for path in deep.iterdir():
            path.unlink()
        deep.rmdir()

    steps: list[tuple[Callable[[], object], set[Path], set[str]]] = [
        # A new directory: the watcher names the directory.
        (lambda: _write(deep / "d.yaml", _route("d", 80)), {tmp_path / "sub"}, {"a", "d"}),
        (
            lambda: os.replace(tmp_path / "a.yaml", tmp_path / "z.yaml"),
            {tmp_path / "a.yaml", tmp_path / "z.yaml"},
            {"a", "d"},
        ),
        (remove_deep, {deep}, {"a"}),  # removed with its files
        (lambda: _write(tmp_path / "notes.txt", "x"), {tmp_path / "notes.txt"}, {"a"}),
        # Broken: the last good version stays (stale), and the error names the file.
        (lambda: _write(tmp_path / "z.yaml", "kind: [broken"), {tmp_path / "z.yaml"}, {"a"}),
        (lambda: _write(tmp_path / "z.yaml", _route("a", 82)), {tmp_path / "z.yaml"}, {"a"}),
        (lambda: _write(conf / "c.yaml", _route("c", 80)), {conf}, {"a", "c"}),
        # Moved out of the tree: one event, for the directory.
        (lambda: os.replace(conf, outside), {conf}, {"a"}),
    ]
    for edit, reported, names in steps:
        edit()
        result = source.load({p.absolute() for p in reported})
        assert {name for _, name in result.snapshot.http_routes} == names
        assert _summary(result) == _summary(reference.load())
    assert result.snapshot.http_routes[("default", "a")].spec.rules[0].backend_refs[0].port == 82
