"""Loading manifests from files: discovery, formats, errors, ignored kinds, duplicates."""

from __future__ import annotations

import json
from pathlib import Path

from turnout.sources import LoadError, load_paths
from turnout.sources.files import FileSource

GC = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: turnout}
spec: {controllerName: turnout.dev/gateway-controller}
"""
ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s}
spec:
  rules:
  - backendRefs: [{name: svc, port: 80}]
"""
BAD_ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: foo}
spec:
  rules:
  - backendRefs: [{name: svc}]
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: apps}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_multi_document_yaml_with_empty_documents(tmp_path: Path) -> None:
    write(
        tmp_path / "all.yaml", "---\n" + GC + "---\n---\n" + ROUTE % "a" + "---\n# only a comment\n"
    )
    result = load_paths([tmp_path])
    assert result.errors == []
    assert list(result.snapshot.gateway_classes) == ["turnout"]
    assert list(result.snapshot.http_routes) == [("default", "a")]
    origin = result.origins[("HTTPRoute", "default", "a")]
    assert (origin.file, origin.document) == (str(tmp_path / "all.yaml"), 3)
    assert origin.status is None  # only the status written in the file is kept


def test_directories_recursive_sorted_dotfiles_skipped(tmp_path: Path) -> None:
    write(tmp_path / "b" / "r.yml", ROUTE % "b")
    write(tmp_path / "a" / "deep" / "r.yaml", ROUTE % "a")
    write(tmp_path / ".hidden" / "r.yaml", ROUTE % "hidden-dir")
    write(tmp_path / ".r.yaml", ROUTE % "hidden-file")
    write(tmp_path / "notes.txt", ROUTE % "text-file")
    result = load_paths([tmp_path])
    assert result.errors == []
    assert list(result.snapshot.http_routes) == [("default", "a"), ("default", "b")]
    assert [o.file for o in result.origins.values()] == [
        str(tmp_path / "a" / "deep" / "r.yaml"),
        str(tmp_path / "b" / "r.yml"),
    ]


def test_explicit_file_is_loaded_whatever_its_name(tmp_path: Path) -> None:
    path = write(tmp_path / "route.txt", ROUTE % "x")
    assert list(load_paths([path]).snapshot.http_routes) == [("default", "x")]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    result = load_paths([tmp_path / "nope"])
    assert [e.message for e in result.errors] == ["no such file or directory"]


def test_json_object_and_lists(tmp_path: Path) -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "single"},
        "spec": {},
    }
    write(tmp_path / "1.json", json.dumps(route))
    items = [{**route, "metadata": {"name": f"item{i}"}} for i in range(2)]
    write(tmp_path / "2.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    write(tmp_path / "3.json", json.dumps({"items": [{**route, "metadata": {"name": "bare"}}]}))
    write(
        tmp_path / "4.yaml",
        "apiVersion: v1\nkind: HTTPRouteList\nitems:\n"
        + "".join(
            f"- {json.dumps({**route, 'metadata': {'name': 'yaml-item'}})}\n" for _ in range(1)
        ),
    )
    result = load_paths([tmp_path])
    assert result.errors == []
    assert sorted(n for _, n in result.snapshot.http_routes) == [
        "bare",
        "item0",
        "item1",
        "single",
        "yaml-item",
    ]
    assert result.origins[("HTTPRoute", "default", "item1")].item == 1


def test_malformed_yaml_gives_one_error_with_line(tmp_path: Path) -> None:
    write(tmp_path / "bad.yaml", GC + "---\nkind: HTTPRoute\nmetadata:\n  name: [unclosed\n")
    result = load_paths([tmp_path])
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.line is not None and error.line >= 8
    assert str(error).startswith(f"{tmp_path / 'bad.yaml'}:{error.line}: invalid YAML")
    assert result.snapshot.gateway_classes == {}


def test_malformed_json_gives_line(tmp_path: Path) -> None:
    write(tmp_path / "bad.json", '{\n  "kind": "HTTPRoute",\n  "metadata": {,}\n}\n')
    (error,) = load_paths([tmp_path]).errors
    assert error.line == 3 and "invalid JSON" in error.message


def test_error_message_format(tmp_path: Path) -> None:
    path = write(tmp_path / "x.yaml", GC + "---\n" + BAD_ROUTE)
    (error,) = load_paths([path]).errors
    assert error == LoadError(
        file=str(path),
        message="required when kind is Service",
        document=2,
        kind="HTTPRoute",
        namespace="default",
        name="foo",
        path="spec.rules[0].backendRefs[0].port",
    )
    assert str(error) == (
        f"{path}#2 HTTPRoute default/foo: spec.rules[0].backendRefs[0].port: "
        "required when kind is Service"
    )


def test_non_object_document_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "x.yaml", "- a\n- b\n")
    (error,) = load_paths([tmp_path]).errors
    assert error.document == 1 and "must be an object" in error.message


def test_unknown_kinds_are_listed_as_ignored(tmp_path: Path) -> None:
    write(tmp_path / "x.yaml", DEPLOYMENT + "---\n" + ROUTE % "r")
    result = load_paths([tmp_path])
    assert result.errors == []
    (ignored,) = result.ignored
    assert (ignored.kind, ignored.namespace, ignored.name, ignored.document) == (
        "Deployment",
        "apps",
        "app",
        1,
    )
    assert str(ignored) == f"{tmp_path / 'x.yaml'}#1 Deployment apps/app (apps/v1)"


def test_unknown_fields_are_warnings(tmp_path: Path) -> None:
    write(tmp_path / "x.yaml", (ROUTE % "r").replace("spec:\n", "spec:\n  fancyNewField: 1\n"))
    result = load_paths([tmp_path])
    assert result.errors == []
    assert [str(w) for w in result.warnings] == [
        f"{tmp_path / 'x.yaml'}#1 HTTPRoute default/r: spec.fancyNewField: unknown field, ignored"
    ]
    assert ("default", "r") in result.snapshot.http_routes


def test_duplicates_across_reloads_of_unchanged_files(tmp_path: Path) -> None:
    """Unchanged files take a fast path on reload; who wins a duplicate must not depend
    on which files were read again."""
    write(tmp_path / "b.yaml", (ROUTE % "dup").replace("port: 80", "port: 81"))
    source = FileSource([tmp_path])
    first = source.load()
    assert first.errors == []
    assert first.snapshot.http_routes[("default", "dup")].spec.rules[0].backend_refs[0].port == 81
    write(tmp_path / "a.yaml", ROUTE % "dup")  # sorts first: it wins from now on
    for _ in range(2):  # b.yaml unchanged both times, a.yaml unchanged the second time
        result = source.load()
        (error,) = result.errors
        assert error.file == str(tmp_path / "b.yaml")
        assert "duplicate object: already defined in" in error.message
        route = result.snapshot.http_routes[("default", "dup")]
        assert route.spec.rules[0].backend_refs[0].port == 80
    (tmp_path / "a.yaml").unlink()
    result = source.load()
    assert result.errors == []
    assert result.snapshot.http_routes[("default", "dup")].spec.rules[0].backend_refs[0].port == 81


def test_duplicates_later_one_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", ROUTE % "dup")
    write(tmp_path / "b.yaml", (ROUTE % "dup").replace("port: 80", "port: 81"))
    write(
        tmp_path / "c.yaml", (ROUTE % "dup").replace("{name: dup}", "{name: dup, namespace: other}")
    )
    result = load_paths([tmp_path])
    (error,) = result.errors
    assert error.file == str(tmp_path / "b.yaml")
    assert "duplicate object: already defined in" in error.message
    assert result.snapshot.http_routes[("default", "dup")].spec.rules[0].backend_refs[0].port == 80
    assert ("other", "dup") in result.snapshot.http_routes


def test_unquoted_yaml_timestamp_becomes_a_string(tmp_path: Path) -> None:
    text = (ROUTE % "r").replace("{name: r}", "{name: r, creationTimestamp: 2024-05-06T07:08:09Z}")
    write(tmp_path / "x.yaml", text)
    result = load_paths([tmp_path])
    assert result.errors == []
    route = result.snapshot.http_routes[("default", "r")]
    assert route.metadata.creation_timestamp == "2024-05-06T07:08:09Z"
