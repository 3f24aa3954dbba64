"""supportedFeatures may only name features whose proving tests exist."""

from __future__ import annotations

import ast
from pathlib import Path

from turnout.features import FEATURE_TESTS, supported_features

ROOT = Path(__file__).resolve().parents[1]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_feature_names_existing_tests() -> None:
    for feature, tests in FEATURE_TESTS.items():
        assert tests, f"{feature} lists no test"
        for node_id in tests:
            file, _, name = node_id.partition("::")
            path = ROOT / file
            assert path.is_file(), f"{feature}: {file} does not exist"
            if name:
                assert name in _test_names(path), f"{feature}: {node_id} does not exist"


def test_supported_features_sorted_and_valid_names() -> None:
    names = supported_features()
    assert names == sorted(names)
    # GEP-2162: PascalCase, letters and digits only, at most 128 characters.
    assert all(n[0].isupper() and n.isalnum() and len(n) <= 128 for n in names)
