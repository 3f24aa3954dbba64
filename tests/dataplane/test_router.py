"""Router unit tests: listener / virtual host selection and rule matching."""

from __future__ import annotations

from collections import Counter

import pytest

from turnout import ir
from turnout.dataplane.router import (
    RequestView,
    Rule,
    SocketTable,
    compile_routes,
    normalize_host,
    parse_query,
)
from turnout.dataplane.upstream import UpstreamCluster

from .helpers import config, listener, rule, to

CLUSTERS = {name: UpstreamCluster(name, ()) for name in ("a", "b", "c")}


def _match(
    path: tuple[str, str] = ("PathPrefix", "/"),
    *,
    headers: tuple[tuple[str, str, str], ...] = (),
    query: tuple[tuple[str, str, str], ...] = (),
    method: str | None = None,
) -> ir.RouteMatch:
    return ir.RouteMatch(
        path=ir.PathMatch(type=path[0], value=path[1]),  # type: ignore[arg-type]
        headers=tuple(ir.HeaderMatch(name=n, type=t, value=v) for n, t, v in headers),  # type: ignore[arg-type]
        query_params=tuple(ir.QueryParamMatch(name=n, type=t, value=v) for n, t, v in query),  # type: ignore[arg-type]
        method=method,
    )


def _socket(listeners: tuple[ir.Listener, ...]) -> SocketTable:
    table = compile_routes(config(listeners), CLUSTERS)
    assert not table.errors
    (socket_table,) = table.sockets.values()
    return socket_table


def _select(
    socket_table: SocketTable,
    host: bytes,
    path: bytes,
    *,
    method: bytes = b"GET",
    headers: tuple[tuple[bytes, bytes], ...] = (),
    query: bytes = b"",
) -> Rule | None:
    vhost = socket_table.lookup(host)
    if vhost is None:
        return None
    view = RequestView(method, [(n.lower(), n, v) for n, v in headers], query)
    return vhost.select(path, view if vhost.needs_view else None)


def _name(found: Rule | None) -> str | None:
    return None if found is None else found.name


def _vhost(hostname: str, *rules: ir.HTTPRouteRule) -> ir.VirtualHost:
    return ir.VirtualHost(hostname=hostname, routes=rules)


def test_normalize_host() -> None:
    assert normalize_host(b"Foo.Example.COM:8080") == b"foo.example.com"
    assert normalize_host(b"foo.example.com") == b"foo.example.com"
    assert normalize_host(b"[::1]:80") == b"[::1]"
    assert normalize_host(b"") == b""


def test_listener_selection_exact_then_longest_wildcard_then_default() -> None:
    listeners = tuple(
        listener(80, (_vhost("*", rule(name)),), name=name, hostname=hostname)
        for name, hostname in [
            ("none", None),
            ("wild", "*.example.com"),
            ("wild-long", "*.b.example.com"),
            ("exact", "a.example.com"),
        ]
    )
    table = _socket(listeners)
    assert _name(_select(table, b"a.example.com", b"/")) == "exact"
    assert _name(_select(table, b"A.Example.Com:80", b"/")) == "exact"
    assert _name(_select(table, b"x.example.com", b"/")) == "wild"
    assert _name(_select(table, b"x.b.example.com", b"/")) == "wild-long"
    assert _name(_select(table, b"a.b.c.example.com", b"/")) == "wild"
    # A wildcard never matches its own suffix.
    assert _name(_select(table, b"example.com", b"/")) == "none"
    assert _name(_select(table, b"other.org", b"/")) == "none"
    assert _name(_select(table, b"", b"/")) == "none"


def test_no_listener_for_host_is_no_match() -> None:
    table = _socket((listener(80, (_vhost("*", rule("x")),), hostname="foo.com"),))
    assert _select(table, b"bar.com", b"/") is None
    assert _name(_select(table, b"FOO.com:1234", b"/")) == "x"


def test_virtual_host_selection() -> None:
    vhosts = (
        _vhost("*", rule("any")),
        _vhost("*.example.com", rule("wild")),
        _vhost("*.deep.example.com", rule("wild-long")),
        _vhost("foo.example.com", rule("exact")),
    )
    table = _socket((listener(80, vhosts),))
    assert _name(_select(table, b"foo.example.com", b"/")) == "exact"
    assert _name(_select(table, b"bar.example.com", b"/")) == "wild"
    assert _name(_select(table, b"a.deep.example.com", b"/")) == "wild-long"
    assert _name(_select(table, b"example.com", b"/")) == "any"


@pytest.mark.parametrize(
    ("value", "path", "matches"),
    [
        ("/abc", b"/abc", True),
        ("/abc", b"/abc/", True),
        ("/abc", b"/abc/def", True),
        ("/abc", b"/abcd", False),
        ("/abc", b"/ab", False),
        ("/abc", b"/ABC", False),
        ("/", b"/anything", True),
    ],
)
def test_path_prefix_is_segment_aware(value: str, path: bytes, matches: bool) -> None:
    table = _socket((listener(80, (_vhost("*", rule("p", match=_match(("PathPrefix", value)))),)),))
    assert (_select(table, b"h", path) is not None) is matches


def test_exact_and_regex_paths() -> None:
    rules = (
        rule("exact", match=_match(("Exact", "/exact"))),
        rule("regex", match=_match(("RegularExpression", "/v[0-9]+/.*"))),
    )
    table = _socket((listener(80, (_vhost("*", *rules),)),))
    assert _name(_select(table, b"h", b"/exact")) == "exact"
    assert _select(table, b"h", b"/exact/") is None
    assert _select(table, b"h", b"/Exact") is None
    assert _name(_select(table, b"h", b"/v2/x")) == "regex"
    # fullmatch, not search
    assert _select(table, b"h", b"/api/v2/x") is None


def test_first_matching_rule_wins_in_given_order() -> None:
    rules = (
        rule("first", match=_match(("PathPrefix", "/a"))),
        rule("second", match=_match(("PathPrefix", "/a/b"))),
        rule("catch-all"),
    )
    table = _socket((listener(80, (_vhost("*", *rules),)),))
    assert _name(_select(table, b"h", b"/a/b")) == "first"
    assert _name(_select(table, b"h", b"/z")) == "catch-all"
    # cached answers stay right
    assert _name(_select(table, b"h", b"/a/b")) == "first"
    assert _name(_select(table, b"h", b"/z")) == "catch-all"


def test_header_query_and_method_conditions() -> None:
    rules = (
        rule("hdr", match=_match(headers=(("version", "Exact", "two"),))),
        rule("hdr-re", match=_match(headers=(("x-re", "RegularExpression", "ab+c"),))),
        rule("query", match=_match(query=(("Q", "Exact", "a b"),))),
        rule("query-re", match=_match(query=(("n", "RegularExpression", "[0-9]+"),))),
        rule("method", match=_match(method="POST")),
        rule("fallback"),
    )
    table = _socket((listener(80, (_vhost("*", *rules),)),))
    assert _name(_select(table, b"h", b"/", headers=((b"Version", b"two"),))) == "hdr"
    assert _name(_select(table, b"h", b"/", headers=((b"version", b"Two"),))) == "fallback"
    assert _name(_select(table, b"h", b"/", headers=((b"X-RE", b"abbbc"),))) == "hdr-re"
    assert _name(_select(table, b"h", b"/", headers=((b"X-RE", b"xabbbc"),))) == "fallback"
    assert _name(_select(table, b"h", b"/", query=b"Q=a+b&Q=z")) == "query"
    assert _name(_select(table, b"h", b"/", query=b"q=a+b")) == "fallback"  # case-sensitive
    assert _name(_select(table, b"h", b"/", query=b"Q=z&Q=a+b")) == "fallback"  # first value
    assert _name(_select(table, b"h", b"/", query=b"n=42")) == "query-re"
    assert _name(_select(table, b"h", b"/", query=b"n=42x")) == "fallback"
    assert _name(_select(table, b"h", b"/", method=b"POST")) == "method"


def test_all_conditions_of_a_match_must_hold() -> None:
    both = rule("both", match=_match(("Exact", "/x"), headers=(("a", "Exact", "1"),), method="GET"))
    table = _socket((listener(80, (_vhost("*", both, rule("other")),)),))
    assert _name(_select(table, b"h", b"/x", headers=((b"a", b"1"),))) == "both"
    assert _name(_select(table, b"h", b"/x", headers=((b"a", b"1"),), method=b"PUT")) == "other"
    assert _name(_select(table, b"h", b"/y", headers=((b"a", b"1"),))) == "other"


def test_repeated_headers_are_joined_for_matching() -> None:
    view = RequestView(b"GET", [(b"a", b"A", b"1"), (b"a", b"a", b"2")], b"")
    assert view.header(b"a") == b"1,2"
    assert parse_query(b"a=%41&b&&c=1=2") == {b"a": b"A", b"b": b"", b"c": b"1=2"}


def test_weighted_choice_respects_weights_and_never_picks_zero() -> None:
    r = rule("w", backends=(to("a", 70), to("b", 30), to("c", 0)))
    table = _socket((listener(80, (_vhost("*", r),)),))
    found = _select(table, b"h", b"/")
    assert found is not None
    counts = Counter(found.choose().cluster.name for _ in range(5000))  # type: ignore[union-attr]
    assert counts["c"] == 0
    assert 0.64 < counts["a"] / 5000 < 0.76


def test_error_status_direct_status_and_unknown_cluster() -> None:
    rules = (
        rule("direct", match=_match(("Exact", "/d")), direct_status=500),
        rule(
            "err",
            match=_match(("Exact", "/e")),
            backends=(ir.WeightedBackend(weight=1, error_status=500),),
        ),
        rule("unknown", match=_match(("Exact", "/u")), backends=(to("nope"),)),
    )
    table = compile_routes(config((listener(80, (_vhost("*", *rules),)),)), CLUSTERS)
    assert any("nope" in e for e in table.errors)
    vhost = next(iter(table.sockets.values())).lookup(b"h")
    assert vhost is not None
    for path in (b"/d", b"/e", b"/u"):
        found = vhost.select(path, None)
        assert found is not None and found.choose().status == 500


def test_bad_regex_is_reported_and_answers_500() -> None:
    bad = rule("bad", match=_match(("RegularExpression", "(unclosed")))
    table = compile_routes(config((listener(80, (_vhost("*", bad),)),)), CLUSTERS)
    assert table.errors and "bad" in table.errors[0]


def test_listeners_grouped_by_socket_and_non_http_skipped() -> None:
    listeners = (
        listener(80, (), name="a", hostname="a.com"),
        listener(80, (), name="b", hostname="b.com"),
        listener(81, (), name="c"),
        listener(443, (), name="tls", protocol="HTTPS"),
    )
    table = compile_routes(config(listeners), CLUSTERS)
    assert set(table.sockets) == {("127.0.0.1", 80), ("127.0.0.1", 81)}
