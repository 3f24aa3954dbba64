"""The Star Wars demo: its objects are self-consistent and the demo reads them right."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from turnout.cli import cli
from turnout.demo import starwars

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EPISODES = [EXAMPLES / "starwars", EXAMPLES / "starwars-episode-iv"]


def _objects(directory: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(directory.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]


def test_default_directory_is_episode_v() -> None:
    assert starwars.default_directory() == EXAMPLES / "starwars"


def test_backends_episode_v() -> None:
    assert starwars.backends(EXAMPLES / "starwars") == [
        starwars.Backend("deathstar", "deathstar-5d8f7c9b4-tk421", "127.0.10.1", 8080),
        starwars.Backend(
            "eye-of-palpatine", "eye-of-palpatine-7b6c5d4f8-ig88b", "127.0.10.2", 8080
        ),
        starwars.Backend("landing", "landing-request-v1-6c9d8f7b5-r2d2x", "127.0.10.11", 8080),
        starwars.Backend("landing", "landing-request-v2-58b7c6d9f-c3p0z", "127.0.10.12", 8080),
    ]


def test_backends_recurse_skip_dotfiles_and_unready(tmp_path: Path) -> None:
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "s", "namespace": "ns", "labels": {"kubernetes.io/service-name": "s"}},
        "addressType": "IPv4",
        "ports": [{"port": 9000}],
        "endpoints": [
            {"addresses": ["127.0.10.5"], "conditions": {"ready": True}},
            {"addresses": ["127.0.10.6"], "conditions": {"ready": False}},
        ],
    }
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text(yaml.safe_dump(slice_))
    (tmp_path / ".a.yaml.swp").write_text("not: [yaml")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "b.yaml").write_text("not: [yaml")
    assert starwars.backends(tmp_path) == [starwars.Backend("ns", "s", "127.0.10.5", 9000)]


def test_probes_and_curl() -> None:
    probes = starwars.probes(starwars.backends(EXAMPLES / "starwars"))
    assert [(p.hostname, p.path, p.status) for p in probes] == [
        ("deathstar.empire.galactic.gov", "/", 200),
        ("deathstar.empire.galactic.gov", "/landing-request", 200),
        ("eye-of-palpatine.empire.galactic.gov", "/", 200),
        ("eye-of-palpatine.empire.galactic.gov", "/landing-request", 200),
        ("alderaan.empire.galactic.gov", "/", 404),
    ]
    assert probes[0].answer() == "answered by pod deathstar-5d8f7c9b4-tk421 (namespace deathstar)"
    assert probes[1].answer() == (
        "answered by pod landing-request-v1-6c9d8f7b5-r2d2x or "
        "landing-request-v2-58b7c6d9f-c3p0z (namespace landing) (a weighted split: see the route)"
    )
    assert probes[0].curl("127.0.0.2", 80) == (
        "curl --resolve deathstar.empire.galactic.gov:80:127.0.0.2 "
        "http://deathstar.empire.galactic.gov/"
    )
    assert probes[4].answer() == "404: no listener of the Gateway has this hostname"
    assert probes[0].curl("127.0.0.1", 8080) == (
        "curl --resolve deathstar.empire.galactic.gov:8080:127.0.0.1 "
        "http://deathstar.empire.galactic.gov:8080/"
    )


@pytest.mark.parametrize("directory", EPISODES, ids=lambda p: p.name)
def test_episode_is_self_consistent(directory: Path) -> None:
    objects = _objects(directory)
    keys = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects}
    assert len(keys) == len(objects), "duplicate objects"
    services = {(ns, name) for kind, ns, name in keys if kind == "Service"}
    sliced = {
        (o["metadata"]["namespace"], o["metadata"]["labels"]["kubernetes.io/service-name"])
        for o in objects
        if o["kind"] == "EndpointSlice"
    }
    assert services == sliced, "every Service has an EndpointSlice and vice versa"
    pool = ipaddress.ip_network("127.0.0.0/24")
    for o in objects:
        for endpoint in o.get("endpoints", []):
            for address in endpoint["addresses"]:
                ip = ipaddress.ip_address(address)
                assert ip.is_loopback and ip not in pool
    for route in (o for o in objects if o["kind"] == "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                key = (ref.get("namespace", route["metadata"]["namespace"]), ref["name"])
                assert key in services, f"{route['metadata']['name']}: no Service {key}"


@pytest.mark.parametrize(("euid", "offset"), [(0, 0), (1000, 8000)])
def test_demo_default_port_offset(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, euid: int, offset: int
) -> None:
    calls: list[tuple[Path, int, tuple[str, int]]] = []

    def fake_main(directory: Path, *, port_offset: int, admin: tuple[str, int]) -> None:
        calls.append((directory, port_offset, admin))

    monkeypatch.setattr(starwars, "main", fake_main)
    monkeypatch.setattr("os.geteuid", lambda: euid)
    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert calls == [(EXAMPLES / "starwars", offset, ("127.0.0.1", 9901))]


def test_demo_options(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, int, tuple[str, int]]] = []

    def fake_main(directory: Path, *, port_offset: int, admin: tuple[str, int]) -> None:
        calls.append((directory, port_offset, admin))

    monkeypatch.setattr(starwars, "main", fake_main)
    episode_iv = EXAMPLES / "starwars-episode-iv"
    args = ["demo", "--dir", str(episode_iv), "--port-offset", "100", "--admin", "127.0.0.1:9000"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert calls == [(episode_iv, 100, ("127.0.0.1", 9000))]
