"""Builders of minimal valid documents for the resource tests."""

from __future__ import annotations

import copy
from typing import Any

from turnout.resources import parse_object

V1 = "gateway.networking.k8s.io/v1"


def gateway_doc(*listeners: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "gatewayClassName": "turnout",
        "listeners": list(listeners) or [{"name": "http", "port": 80, "protocol": "HTTP"}],
    }
    body.update(spec)
    return {
        "apiVersion": V1,
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": body,
    }


def route_doc(*rules: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"parentRefs": [{"name": "gw", "namespace": "infra"}]}
    if rules:
        body["rules"] = list(rules)
    body.update(spec)
    return {
        "apiVersion": V1,
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": body,
    }


def backend(name: str = "svc", port: int | None = 80, **extra: Any) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, **extra}
    if port is not None:
        ref["port"] = port
    return ref


def errors_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    result = parse_object(copy.deepcopy(doc))
    assert not result.ignored
    if result.errors:
        assert result.obj is None
    return [(e.path, e.message) for e in result.errors]


def assert_error(doc: dict[str, Any], path: str, message: str) -> None:
    """``doc`` is rejected with an error at ``path`` whose message contains ``message``."""
    errors = errors_of(doc)
    matching = [m for p, m in errors if p == path]
    assert matching, f"no error at {path}; got {errors}"
    assert any(message in m for m in matching), f"{path}: {matching} lacks {message!r}"


def assert_valid(doc: dict[str, Any]) -> None:
    errors = errors_of(doc)
    assert errors == [], errors
