"""GRPCRoute method matches compiled to :path matches, checked with the data plane's
own path matcher (so the table in turnout.ir.grpcroute is tested end to end)."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.dataplane.router import compile_path
from turnout.ir.grpcroute import match_key, method_path
from turnout.resources.grpcroute import GRPCHeaderMatch, GRPCMethodMatch, GRPCRouteMatch


def _matcher(**method: Any) -> Any:
    return compile_path(method_path(GRPCMethodMatch(**method) if method else None))


CASES: list[tuple[dict[str, Any], list[str], list[str]]] = [
    (
        {"service": "pkg.v1.Greeter", "method": "SayHello"},
        ["/pkg.v1.Greeter/SayHello"],
        ["/pkg.v1.Greeter/SayHelloAgain", "/pkg.v1.Greeter/sayhello", "/pkgXv1.Greeter/SayHello"],
    ),
    (
        {"service": "pkg.v1.Greeter"},
        ["/pkg.v1.Greeter/SayHello", "/pkg.v1.Greeter/Other"],
        ["/pkg.v1.GreeterX/SayHello", "/pkg.v1/Greeter", "/other.Greeter/SayHello"],
    ),
    (
        {"method": "Check"},
        ["/grpc.health.v1.Health/Check", "/a/Check"],
        ["/a/CheckAll", "/Check", "/a/b/Check", "//Check"],
    ),
    (
        {"type": "RegularExpression", "service": "pkg\\.v[0-9]+\\.Greeter", "method": "Say.*"},
        ["/pkg.v1.Greeter/SayHello", "/pkg.v22.Greeter/Say"],
        ["/pkg.vX.Greeter/SayHello", "/pkg.v1.Greeter/Hello", "/x/pkg.v1.Greeter/SayHello"],
    ),
    (
        # An alternation stays inside its segment: "a|b" must not become "/a" or "b/...".
        {"type": "RegularExpression", "service": "a|b", "method": "M|N"},
        ["/a/M", "/b/N"],
        ["/a", "/ab/M", "/a/MN", "/c/M"],
    ),
    (
        {"type": "RegularExpression", "service": "pkg\\..*"},
        ["/pkg.A/Any", "/pkg.B.C/X"],
        # A pattern that can match "/" itself ("." does) may span segments; gRPC
        # paths have exactly two, so that only matters for paths no client sends.
        ["/pkg.A", "/other.A/Any", "/pkg.A/"],
    ),
    (
        {"type": "RegularExpression", "method": "Get|List"},
        ["/svc/Get", "/x.y/List"],
        ["/svc/GetAll", "/Get", "/svc/Put"],
    ),
    (
        {"type": "RegularExpression", "service": "", "method": "Watch"},
        ["/svc/Watch"],
        ["/svc/Watcher"],
    ),
    ({}, ["/anything/At", "/"], []),
]


@pytest.mark.parametrize(("method", "hits", "misses"), CASES)
def test_method_match_paths(method: dict[str, Any], hits: list[str], misses: list[str]) -> None:
    matches = _matcher(**method)
    for path in hits:
        assert matches(path.encode()), path
    for path in misses:
        assert not matches(path.encode()), path


def test_exact_method_is_escaped() -> None:
    # Exact names are identifiers (CEL), but the builder must not rely on it.
    path = method_path(GRPCMethodMatch(method="a.b"))
    assert path.value == "/[^/]+/a\\.b"
    matches = compile_path(path)
    assert matches(b"/svc/a.b") and not matches(b"/svc/aXb")


def test_precedence_key() -> None:
    def key(**method: Any) -> tuple[int, ...]:
        return match_key(GRPCRouteMatch(method=GRPCMethodMatch(**method) if method else None))

    exact = key(service="a.B", method="M")
    assert key(service="a.Bee") < exact  # more service characters first
    assert exact < key(service="a.B")  # then more method characters
    assert key(service="a.B") < key(type="RegularExpression", service="a.B")  # Exact on ties
    header = GRPCHeaderMatch(name="x", value="1")
    with_header = match_key(GRPCRouteMatch(method=GRPCMethodMatch(service="a.B"), headers=[header]))
    assert with_header < key(service="a.B")
    assert key(service="a.B") < key()  # a match of every request last
