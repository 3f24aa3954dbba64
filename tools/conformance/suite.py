"""Read the Gateway API conformance suite from the local mirror, at run time.

Nothing of the suite is copied into this repository: the base manifests, each test's
YAML and its .go file are read with ``git show`` from the bare mirror every run. This
module finds the tests, their features and manifests, and the constants their Go code
uses (suite names, condition types and reasons), so :mod:`expect` can read what each
test asserts.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

MIRROR = Path("/work/.mirror/kubernetes-sigs+gateway-api/repo")


def available() -> bool:
    return (MIRROR / "HEAD").exists()


@cache
def show(path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(MIRROR), "show", f"HEAD:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@cache
def ls(prefix: str) -> list[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(MIRROR), "ls-tree", "-r", "--name-only", "HEAD", prefix],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()


def head() -> str:
    return subprocess.run(
        ["git", "--git-dir", str(MIRROR), "log", "-1", "--format=%h %cs"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@cache
def feature_names() -> dict[str, str]:
    """Go identifier (SupportHTTPRoute) -> feature name (HTTPRoute)."""
    names: dict[str, str] = {}
    for path in ls("pkg/features"):
        for m in re.finditer(r"(Support\w+)\s+FeatureName\s*=\s*\"(\w+)\"", show(path)):
            names[m.group(1)] = m.group(2)
    return names


@cache
def constants() -> dict[str, str]:
    """String constants of the suite and of apis/v1 (condition types and reasons)."""
    out: dict[str, str] = {}
    paths = [p for p in ls("apis/v1") if p.endswith(".go") and "zz_" not in p]
    paths += [p for p in ls("apis/v1alpha2") if p.endswith("_types.go")]
    paths += ["conformance/utils/suite/consts.go"]
    for path in paths:
        text = show(path)
        for m in re.finditer(r"^\s*(\w+)\s+(?:\w+\s+)?=\s*\"([^\"]*)\"", text, re.M):
            out.setdefault(m.group(1), m.group(2))
    out.update(
        {
            "ConditionTrue": "True",
            "ConditionFalse": "False",
            "ConditionUnknown": "Unknown",
        }
    )
    return out


@dataclass
class ConformanceTest:
    short_name: str
    features: list[str]
    manifests: list[str]
    provisional: bool
    source: str
    path: str
    unknown_features: list[str] = field(default_factory=list)


def discover() -> list[ConformanceTest]:
    feats = feature_names()
    tests = []
    for path in ls("conformance/tests"):
        if not path.endswith(".go") or path.endswith("main.go"):
            continue
        whole = show(path)
        starts = list(re.finditer(r"=\s*confsuite\.ConformanceTest\{", whole))
        for k, m in enumerate(starts):
            end = starts[k + 1].start() if k + 1 < len(starts) else len(whole)
            # Helpers and tables above the first test belong to every test of the file.
            source = whole[: starts[0].start()] + whole[m.start() : end]
            body = whole[m.end() : m.end() + 3000]
            name = re.search(r"ShortName:\s*\"(\w+)\"", body)
            if name is None:
                continue
            fblock = re.search(r"Features:\s*\[\]features\.FeatureName\{(.*?)\}", body, re.S)
            idents = re.findall(r"features\.(\w+)", fblock.group(1)) if fblock else []
            manifests = re.findall(r"\"(tests/[\w./-]+\.yaml)\"", body.split("Test:")[0])
            tests.append(
                ConformanceTest(
                    short_name=name.group(1),
                    features=[feats.get(i, i) for i in idents],
                    manifests=manifests,
                    provisional=bool(re.search(r"Provisional:\s*true", body)),
                    source=source,
                    path=path,
                    unknown_features=[i for i in idents if i not in feats],
                )
            )
    return tests
