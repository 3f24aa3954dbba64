"""A small reader of Go composite literals, enough for the conformance tests' tables.

The conformance tests describe their requests and expected answers as Go literals
(``http.ExpectedResponse{Request: http.Request{Path: "/"}, Backend: ..., Namespace: ns}``).
This module turns such a literal into Python values (dicts for keyed literals, lists for
positional ones) so the harness can replay them without a Go toolchain. It is a reader of
a narrow subset, not a Go parser: types are dropped, calls like ``ptr.To(x)`` or
``string(x)`` yield their first argument, and identifiers are resolved through a table
the caller builds from the test file and the suite's constants. An identifier it cannot
resolve raises :class:`Unresolved`, so the caller can report the case as not evaluated
instead of guessing.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""\s+|//[^\n]*|/\*.*?\*/
    |(?P<str>"(?:\\.|[^"\\])*")
    |(?P<raw>`[^`]*`)
    |(?P<num>-?\d+(?:\.\d+)?)
    |(?P<ident>[A-Za-z_][\w.]*)
    |(?P<punct>[{}()\[\]:,&*])
    """,
    re.X | re.S,
)


class Unresolved(Exception):
    """An identifier or construct the reader cannot give a value to."""


def tokenize(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise Unresolved(f"cannot read Go text at {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind is not None:
            out.append((kind, m.group(kind)))
    return out


def _unquote(tok: str) -> str:
    body = tok[1:-1]
    return bytes(body, "utf-8").decode("unicode_escape") if "\\" in body else body


class Reader:
    def __init__(self, tokens: list[tuple[str, str]], names: dict[str, Any]) -> None:
        self.toks = tokens
        self.i = 0
        self.names = names

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise Unresolved(f"expected {value!r}, got {tok[1]!r}")

    def value(self) -> Any:
        kind, tok = self.peek()
        if tok in ("&", "*"):
            self.take()
            return self.value()
        if kind == "str":
            self.take()
            return self._concat(_unquote(tok))
        if kind == "raw":
            self.take()
            return tok[1:-1]
        if kind == "num":
            self.take()
            return float(tok) if "." in tok else int(tok)
        if tok == "[":
            self._skip_type()
            return self.composite()
        if tok == "{":
            return self.composite()
        if kind == "ident":
            return self._ident()
        raise Unresolved(f"unexpected {tok!r}")

    def _concat(self, s: str) -> Any:
        return s

    def _skip_type(self) -> None:
        # []T, [N]T, map[K]V, []*T before a composite's '{'.
        while self.peek()[1] != "{":
            if self.peek()[0] == "eof":
                raise Unresolved("unterminated type")
            self.take()

    def _ident(self) -> Any:
        _, name = self.take()
        nxt = self.peek()[1]
        if name.startswith("map") and nxt == "[":
            self._skip_type()
            return self.composite()
        if nxt == "{":
            return self.composite()
        if nxt == "(":
            self.take()
            args = []
            while self.peek()[1] != ")":
                args.append(self.value())
                if self.peek()[1] == ",":
                    self.take()
            self.take()
            if name == "time.Duration" or not args:
                raise Unresolved(f"call {name}")
            return args[0]
        if name in ("true", "false"):
            return name == "true"
        if name == "nil":
            return None
        if name in self.names:
            return self.names[name]
        short = name.rsplit(".", 1)[-1]
        if short in self.names:
            return self.names[short]
        raise Unresolved(f"identifier {name}")

    def composite(self) -> Any:
        self.expect("{")
        keyed: dict[str, Any] = {}
        items: list[Any] = []
        while self.peek()[1] != "}":
            if self.peek(1)[1] == ":" and self.peek()[0] in ("ident", "str"):
                kind, key = self.take()
                self.take()
                keyed[_unquote(key) if kind == "str" else key] = self.value()
            else:
                items.append(self.value())
            if self.peek()[1] == ",":
                self.take()
        self.take()
        return keyed if keyed or not items else items


def read_literal(text: str, names: dict[str, Any]) -> Any:
    """The value of the Go literal at the start of ``text``."""
    return Reader(tokenize(text), names).value()


def literal_spans(source: str, start: re.Pattern[str]) -> list[tuple[int, str]]:
    """Every balanced ``{...}`` that follows a match of ``start``, with its offset."""
    spans = []
    for m in start.finditer(source):
        i = source.index("{", m.end() - 1)
        depth = 0
        j = i
        in_str = None
        while j < len(source):
            c = source[j]
            if in_str:
                if c == "\\" and in_str == '"':
                    j += 1
                elif c == in_str:
                    in_str = None
            elif c in '"`':
                in_str = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        spans.append((m.start(), source[i : j + 1]))
    return spans
