"""The Star Wars example through `turnout run`: the talk's scenario as real traffic.

The example's backends live on 127.0.10.x; the test moves them to 127.0.12.x so it
never collides with a `make run` demo running on the same machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Turnout, request, wait_for
from turnout.demo.starwars import backends as example_backends

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "starwars"
OFFSET = 8000
DEATHSTAR = "deathstar.empire.galactic.gov"


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "starwars"
    shutil.copytree(EXAMPLE, directory)
    for file in directory.glob("*.yaml"):
        file.write_text(file.read_text().replace("127.0.10.", "127.0.12."))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "turnout.demo.echo",
                "--listen",
                f"{b.address}:{b.port}",
                "--name",
                b.pod,
                "--namespace",
                b.namespace,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for b in example_backends(directory)
    ]
    try:
        for b in example_backends(directory):
            wait_for(lambda b=b: request(b.address, b.port).status == 200, what=b.pod)
        yield directory
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def _landing_grant_file(directory: Path) -> Path:
    return next(f for f in directory.glob("*.yaml") if "kind: ReferenceGrant" in f.read_text())


def test_episode_v_split_and_grant_removal(example: Path, turnout: Callable[..., Turnout]) -> None:
    t = turnout(example, "--port-offset", str(OFFSET))
    address = t.address("deathstar-gateway", "infra")
    port = 80 + OFFSET
    own = request(address, port, "/", host=DEATHSTAR).json()
    assert own["namespace"] == "deathstar"
    pods = Counter(
        request(address, port, "/landing-request", host=DEATHSTAR).json()["pod"] for _ in range(100)
    )
    assert sum(pods.values()) == 100
    assert all(p.startswith("landing-request-v") for p in pods), pods
    # A host no listener serves gets 404.
    assert request(address, port, "/", host="alderaan.empire.galactic.gov").status == 404

    # Remove the landing team's ReferenceGrant: the route is refused the backend.
    grant_file = _landing_grant_file(example)
    text = grant_file.read_text()
    docs = text.split("\n---\n")
    grant_file.write_text("\n---\n".join(d for d in docs if "kind: ReferenceGrant" not in d))

    def refused() -> bool:
        route = t.find("HTTPRoute", "deathstar", "deathstar")
        parent = route["status"]["parents"][0]
        cond = {c["type"]: c for c in parent["conditions"]}["ResolvedRefs"]
        return cond["reason"] == "RefNotPermitted"

    wait_for(refused, what="RefNotPermitted on the deathstar route")
    assert request(address, port, "/landing-request", host=DEATHSTAR).status == 500
    # The team's own service, in its own namespace, needs no grant and still works.
    assert request(address, port, "/", host=DEATHSTAR).status == 200
