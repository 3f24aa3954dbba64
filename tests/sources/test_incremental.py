"""Reloads read and parse only the files that changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from turnout.sources import files
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
    real = files.parse_object

    def counting(doc: object) -> object:
        parsed.append(doc["metadata"]["name"])  # type: ignore[index]
        return real(doc)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "parse_object", counting)
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
