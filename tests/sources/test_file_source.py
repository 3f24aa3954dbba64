"""FileSource across reloads: generation, creationTimestamp, uid, last good version."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from turnout.resources import Namespace, parse_object
from turnout.sources import FileSource, Snapshot

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: apps
  labels: {team: a}
spec:
  hostnames: [web.example]
  rules:
  - backendRefs: [{name: svc, port: 80}]
"""
OTHER = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: apps}
data: {a: "1"}
"""
KEY = ("HTTPRoute", "apps", "web")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self) -> None:
        self.now += dt.timedelta(hours=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "route.yaml"
    path.write_text(ROUTE)
    return path


def web(source: FileSource) -> tuple[int | None, str | None, str | None]:
    result = source.load()
    route = result.snapshot.http_routes[("apps", "web")]
    meta = route.metadata
    return meta.generation, meta.creation_timestamp, meta.uid


def test_first_sighting(manifest: Path, clock: Clock) -> None:
    generation, created, uid = web(FileSource([manifest], clock=clock))
    assert generation == 1
    assert created == "2026-01-02T03:04:05Z"
    assert uid


def test_unchanged_spec_keeps_generation_timestamp_and_uid(manifest: Path, clock: Clock) -> None:
    source = FileSource([manifest], clock=clock)
    first = web(source)
    clock.advance()
    # Metadata, formatting and spelled-out defaults are not spec changes.
    manifest.write_text(
        ROUTE.replace("labels: {team: a}", "labels: {team: b}").replace(
            "port: 80}", "port: 80, weight: 1, kind: Service}"
        )
        + "\n# comment\n"
    )
    assert web(source) == first


def test_spec_change_bumps_generation_only(manifest: Path, clock: Clock) -> None:
    source = FileSource([manifest], clock=clock)
    _, created, uid = web(source)
    clock.advance()
    manifest.write_text(ROUTE.replace("port: 80", "port: 81"))
    assert web(source) == (2, created, uid)
    manifest.write_text(ROUTE.replace("port: 80", "port: 82"))
    assert web(source) == (3, created, uid)
    assert web(source) == (3, created, uid)


def test_given_creation_timestamp_and_uid_are_kept(manifest: Path, clock: Clock) -> None:
    manifest.write_text(
        ROUTE.replace(
            "name: web\n", 'name: web\n  creationTimestamp: "2020-01-01T00:00:00Z"\n  uid: abc\n'
        )
    )
    source = FileSource([manifest], clock=clock)
    assert web(source) == (1, "2020-01-01T00:00:00Z", "abc")


def test_generation_given_in_the_file_is_overridden(manifest: Path, clock: Clock) -> None:
    manifest.write_text(ROUTE.replace("name: web\n", "name: web\n  generation: 7\n"))
    assert web(FileSource([manifest], clock=clock))[0] == 1


def test_data_changes_bump_generation_of_config_maps(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text(OTHER)
    source = FileSource([path], clock=clock)
    key = ("apps", "cfg")
    assert source.load().snapshot.config_maps[key].metadata.generation == 1
    path.write_text(OTHER.replace('"1"', '"2"'))
    assert source.load().snapshot.config_maps[key].metadata.generation == 2


def test_last_good_version_when_file_does_not_parse(manifest: Path, clock: Clock) -> None:
    source = FileSource([manifest], clock=clock)
    before = web(source)
    manifest.write_text(ROUTE.replace("port: 80", "port: 81") + "  - [unclosed\n")
    result = source.load()
    assert len(result.errors) == 1 and result.errors[0].line is not None
    route = result.snapshot.http_routes[("apps", "web")]
    assert route.spec.rules[0].backend_refs[0].port == 80
    assert result.stale == {KEY}
    assert (
        route.metadata.generation,
        route.metadata.creation_timestamp,
        route.metadata.uid,
    ) == before
    manifest.write_text(ROUTE.replace("port: 80", "port: 81"))
    result = source.load()
    assert result.errors == [] and result.stale == set()
    assert result.snapshot.http_routes[("apps", "web")].metadata.generation == 2


def test_last_good_version_when_object_is_invalid(manifest: Path, clock: Clock) -> None:
    source = FileSource([manifest], clock=clock)
    before = web(source)
    manifest.write_text(ROUTE.replace("port: 80", "port: 0"))
    result = source.load()
    assert [e.path for e in result.errors] == ["spec.rules[0].backendRefs[0].port"]
    route = result.snapshot.http_routes[("apps", "web")]
    assert route.spec.rules[0].backend_refs[0].port == 80
    assert result.stale == {KEY}
    manifest.write_text(ROUTE)
    assert web(source) == before


def test_invalid_new_object_is_not_added(manifest: Path, clock: Clock) -> None:
    manifest.write_text(ROUTE.replace("port: 80", "port: 0"))
    result = FileSource([manifest], clock=clock).load()
    assert result.snapshot.http_routes == {} and result.stale == set()


def test_removed_object_is_removed_and_comes_back_new(manifest: Path, clock: Clock) -> None:
    source = FileSource([manifest], clock=clock)
    _, created, uid = web(source)
    manifest.write_text(OTHER)
    result = source.load()
    assert result.snapshot.http_routes == {}
    assert list(result.snapshot.config_maps) == [("apps", "cfg")]
    clock.advance()
    manifest.write_text(ROUTE)
    generation, created_again, uid_again = web(source)
    assert generation == 1 and created_again != created and uid_again != uid


def test_deleted_file_removes_its_objects(tmp_path: Path, manifest: Path, clock: Clock) -> None:
    source = FileSource([tmp_path], clock=clock)
    assert ("apps", "web") in source.load().snapshot.http_routes
    manifest.unlink()
    assert source.load().snapshot.http_routes == {}


def test_object_moved_to_another_file_keeps_identity(
    tmp_path: Path, manifest: Path, clock: Clock
) -> None:
    source = FileSource([tmp_path], clock=clock)
    before = web(source)
    manifest.unlink()
    (tmp_path / "moved.yaml").write_text(ROUTE)
    assert web(source) == before


def test_namespace_labels() -> None:
    result = parse_object(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "apps", "labels": {"team": "a"}},
        }
    )
    assert isinstance(result.obj, Namespace)
    snapshot = Snapshot(namespaces={"apps": result.obj})
    assert snapshot.namespace_labels("apps") == {"team": "a", "kubernetes.io/metadata.name": "apps"}
    assert snapshot.namespace_labels("undeclared") == {"kubernetes.io/metadata.name": "undeclared"}
    assert result.obj.metadata.labels == {"team": "a"}
