"""Filters (pure): header modifiers, path rewrites, redirect Location rules, message heads."""

from __future__ import annotations

import pytest

from turnout import ir
from turnout.dataplane import messages as msg
from turnout.dataplane.filters import HeaderEdit, PathEdit, Redirect, replace_prefix


@pytest.mark.parametrize(
    ("path", "prefix", "replacement", "expected"),
    [
        (b"/foo/bar", b"/foo", b"/xyz", b"/xyz/bar"),
        (b"/foo", b"/foo", b"", b"/"),
        (b"/foo/", b"/foo", b"/", b"/"),
        (b"/foo/bar", b"/foo", b"/", b"/bar"),
        (b"/foo/bar", b"/foo", b"/xyz/", b"/xyz/bar"),
        (b"/prefix/one/two", b"/prefix/one", b"/one", b"/one/two"),
        (b"/abc", b"/", b"/xyz", b"/xyz/abc"),
        (b"/", b"/", b"/xyz", b"/xyz"),
    ],
)
def test_replace_prefix(path: bytes, prefix: bytes, replacement: bytes, expected: bytes) -> None:
    assert replace_prefix(path, prefix, replacement) == expected


def test_replace_full_path() -> None:
    edit = PathEdit(ir.PathModifier(type="ReplaceFullPath", value="/new"))
    assert edit.apply(b"/old/path") == b"/new"


def _redirect(spec_port: int = 80, **kwargs: object) -> Redirect:
    return Redirect(ir.RequestRedirect(**kwargs), listener_scheme="http", spec_port=spec_port)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "spec_port", "expected"),
    [
        ({}, 80, b"http://example.com/p?q=1"),
        ({}, 8080, b"http://example.com:8080/p?q=1"),
        ({"scheme": "https"}, 8080, b"https://example.com/p?q=1"),
        ({"scheme": "https", "port": 443}, 80, b"https://example.com/p?q=1"),
        ({"scheme": "https", "port": 8443}, 80, b"https://example.com:8443/p?q=1"),
        ({"scheme": "http", "port": 80}, 8080, b"http://example.com/p?q=1"),
        ({"port": 8081}, 80, b"http://example.com:8081/p?q=1"),
        ({"hostname": "other.org"}, 80, b"http://other.org/p?q=1"),
        (
            {"path": ir.PathModifier(type="ReplacePrefixMatch", value="/new", prefix="/p")},
            80,
            b"http://example.com/new?q=1",
        ),
        (
            {"path": ir.PathModifier(type="ReplaceFullPath", value="/full")},
            80,
            b"http://example.com/full?q=1",
        ),
    ],
)
def test_redirect_location(kwargs: dict[str, object], spec_port: int, expected: bytes) -> None:
    assert _redirect(spec_port, **kwargs).location(b"example.com:1234", b"/p", b"q=1") == expected


def test_redirect_without_query() -> None:
    assert _redirect().location(b"example.com", b"/p", None) == b"http://example.com/p"


def test_header_edit_set_add_remove_case_insensitive() -> None:
    edit = HeaderEdit.compile(
        ir.HeaderModifier(
            set=(("x-set", "new"),),
            add=(("x-add", "add-appends-values"), ("x-fresh", "1")),
            remove=("x-remove",),
        )
    )
    headers = [
        (b"x-set", b"X-Set", b"old"),
        (b"x-set", b"x-set", b"old2"),
        (b"x-add", b"X-Add", b"some-other-value"),
        (b"x-remove", b"X-REMOVE", b"gone"),
        (b"keep", b"Keep", b"yes"),
    ]
    out = {lname: value for lname, _, value in edit.apply(headers)}
    assert out == {
        b"x-set": b"new",
        b"x-add": b"some-other-value,add-appends-values",
        b"x-fresh": b"1",
        b"keep": b"yes",
    }


def test_request_headers_drop_hop_by_hop_and_connection_named() -> None:
    raw = [
        (b"Host", b"h"),
        (b"Connection", b"keep-alive, X-Secret"),
        (b"X-Secret", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Proxy-Connection", b"x"),
        (b"TE", b"trailers"),
        (b"Trailer", b"x"),
        (b"Upgrade", b"h2c"),
        (b"X-Forwarded-For", b"1.2.3.4"),
        (b"Accept", b"*/*"),
    ]
    parsed = msg.RequestHeaders(raw)
    assert parsed.host == b"h"
    assert [name for _, name, _ in parsed.kept] == [b"Accept"]
    assert parsed.upgrade
    assert msg.forwarded_headers(b"10.0.0.1", parsed.xff) == (
        b"x-forwarded-for: 1.2.3.4, 10.0.0.1\r\nx-forwarded-proto: http\r\n"
    )


@pytest.mark.parametrize(
    ("raw", "http10", "mode", "keep", "framing"),
    [
        ([(b"Content-Length", b"5")], False, msg.BODY_LENGTH, True, b"Content-Length: 5\r\n"),
        (
            [(b"Transfer-Encoding", b"chunked")],
            False,
            msg.BODY_CHUNKED,
            True,
            b"transfer-encoding: chunked",
        ),
        (
            [(b"Transfer-Encoding", b"chunked")],
            True,
            msg.BODY_UNTIL_CLOSE,
            False,
            b"connection: close",
        ),
        ([], False, msg.BODY_CHUNKED, True, b"transfer-encoding: chunked"),
    ],
)
def test_response_framing(
    raw: list[tuple[bytes, bytes]], http10: bool, mode: int, keep: bool, framing: bytes
) -> None:
    head = msg.ResponseHead(200, raw, head_request=False, http10=http10, keep_alive=True, edits=())
    assert head.body_mode == mode
    assert head.keep_alive is keep
    assert framing in head.data
    assert head.data.startswith(b"HTTP/1.1 200 OK\r\n") and head.data.endswith(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head.data


def test_response_hop_by_hop_removed_and_edits_applied() -> None:
    raw = [
        (b"Connection", b"X-Internal"),
        (b"X-Internal", b"1"),
        (b"Content-Length", b"0"),
        (b"Server", b"b"),
    ]
    edits = (HeaderEdit.compile(ir.HeaderModifier(set=(("server", "turnout"),))),)
    head = msg.ResponseHead(
        200, raw, head_request=False, http10=False, keep_alive=True, edits=edits
    )
    assert b"X-Internal" not in head.data and b"Connection" not in head.data
    assert b"server: turnout\r\n" in head.data and b"Server: b" not in head.data


def test_local_response_has_length_and_connection() -> None:
    data = msg.local_response(404, msg.CONN_CLOSE)
    assert data.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"content-length: 14\r\n" in data and b"connection: close\r\n" in data
    assert data.endswith(b"\r\n\r\n404 Not Found\n")
