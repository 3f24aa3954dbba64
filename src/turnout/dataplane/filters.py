"""filters: HTTPRoute filters compiled to byte-level operations (pure, no I/O).

Place in the pipeline: :mod:`turnout.dataplane.router` compiles ``ir.Filters`` into the
objects below once per configuration; :mod:`turnout.dataplane.http1` applies them per
request. Headers are handled as lists of ``(lower-case name, name, value)`` byte tuples,
the form the HTTP/1 code keeps after removing hop-by-hop headers.
"""

from __future__ import annotations

import re
from typing import Final

from turnout import ir

Header = tuple[bytes, bytes, bytes]  # (lower-case name, name as sent, value)

# RFC 9110 5.1 token; 5.5 field-value: no CTL but HTAB (obs-text allowed).
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE: Final = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
# What a filter may put into a request line or a Location: RFC 3986 path characters
# (pchar and "/", %-escapes) and a hostname (RFC 1123, or an IP literal). No space, CR,
# LF, NUL, "?" or "#", so configuration can never split a message or inject a header.
_PATH: Final = re.compile(rb"[-A-Za-z0-9/._~!$&'()*+,;=:@%]*")
_HOSTNAME: Final = re.compile(rb"[-A-Za-z0-9.]+|\[[0-9A-Fa-f:.]+\]")


def _b(text: str) -> bytes:
    return text.encode("utf-8")


def _path(text: str) -> bytes:
    """A path a filter writes; ValueError when it could break the request line/Location."""
    path = _b(text)
    if _PATH.fullmatch(path) is None:
        raise ValueError(f"path {text!r} has characters that are not allowed in a path")
    return path


def _hostname(text: str) -> bytes:
    """A hostname a filter writes; ValueError when it is not a plain hostname."""
    host = _b(text)
    if _HOSTNAME.fullmatch(host) is None:
        raise ValueError(f"hostname {text!r} is not a valid hostname")
    return host


def _field(name: str, value: str) -> Header:
    """A header for a filter to write; ValueError when it could break the message framing."""
    bname, bvalue = _b(name), _b(value)
    if _TOKEN.fullmatch(bname) is None:
        raise ValueError(f"header name {name!r} is not an HTTP token")
    if _FIELD_VALUE.fullmatch(bvalue) is None:
        raise ValueError(f"header {name} value {value!r} has control characters")
    return (bname.lower(), bname, bvalue)


class HeaderEdit:
    """A compiled RequestHeaderModifier / ResponseHeaderModifier.

    ``set`` replaces every value of a header, ``add`` appends to the existing value joined
    with "," (what the Gateway API conformance echo expects: ``old,new``), ``remove`` drops
    the header; names are case-insensitive.
    """

    __slots__ = ("add", "remove", "set")

    def __init__(
        self,
        set_: tuple[Header, ...] = (),
        add: tuple[Header, ...] = (),
        remove: frozenset[bytes] = frozenset(),
    ) -> None:
        self.set = set_
        self.add = add
        self.remove = remove

    @classmethod
    def compile(cls, modifier: ir.HeaderModifier) -> HeaderEdit:
        """The edit of a filter, validated here, once: the loader already refuses control
        characters, but a CR or LF reaching the wire would let configuration inject headers
        or split messages."""
        return cls(
            tuple(_field(n, v) for n, v in modifier.set),
            tuple(_field(n, v) for n, v in modifier.add),
            frozenset(_b(n.lower()) for n in modifier.remove),
        )

    @classmethod
    def setting(cls, set_: list[Header], add: list[Header]) -> HeaderEdit:
        """An edit built from already-valid header triples (values taken from a request)."""
        return cls(tuple(set_), tuple(add))

    def apply(self, headers: list[Header]) -> list[Header]:
        """Return the edited header list (``headers`` may be modified in place)."""
        for lname, name, value in self.set:
            headers = [h for h in headers if h[0] != lname]
            headers.append((lname, name, value))
        for lname, name, value in self.add:
            existing = [h[2] for h in headers if h[0] == lname]
            if existing:
                joined = b",".join([*existing, value])
                headers = [h for h in headers if h[0] != lname]
                headers.append((lname, name, joined))
            else:
                headers.append((lname, name, value))
        if self.remove:
            headers = [h for h in headers if h[0] not in self.remove]
        return headers


class HeaderAppend(HeaderEdit):
    """Adds one header line and keeps the others: Set-Cookie lines must never be joined
    with "," (RFC 6265 3), as HeaderEdit's ``add`` does for other headers."""

    __slots__ = ("line",)

    def __init__(self, line: Header) -> None:  # no HeaderEdit.__init__: nothing to validate
        self.line = line
        self.set = ()
        self.add = ()
        self.remove = frozenset()

    def apply(self, headers: list[Header]) -> list[Header]:
        headers.append(self.line)
        return headers


class PathEdit:
    """A compiled HTTPPathModifier, shared by RequestRedirect and URLRewrite."""

    __slots__ = ("full", "prefix", "replacement")

    def __init__(self, modifier: ir.PathModifier) -> None:
        self.full = modifier.type == "ReplaceFullPath"
        self.replacement = _path(modifier.value)
        self.prefix = _b(modifier.prefix)

    def apply(self, path: bytes) -> bytes:
        if self.full:
            return self.replacement or b"/"
        return replace_prefix(path, self.prefix, self.replacement)


def replace_prefix(path: bytes, prefix: bytes, replacement: bytes) -> bytes:
    """ReplacePrefixMatch: ``/foo/bar`` with prefix ``/foo`` and ``/xyz`` gives ``/xyz/bar``.

    The prefix matched segment-wise, so what follows it is empty or starts with "/". A
    trailing "/" of the replacement is dropped so that ``/foo/bar`` with ``/`` gives
    ``/bar`` (not ``//bar``), and an empty result becomes ``/``.
    """
    rest = path[1:] if prefix == b"/" else path[len(prefix) :]
    if prefix == b"/" and rest:
        rest = b"/" + rest
    result = replacement.rstrip(b"/") + rest
    if not result.startswith(b"/"):
        result = b"/" + result
    return result


_WELL_KNOWN_PORTS: Final = {b"http": 80, b"https": 443}


class Redirect:
    """A compiled RequestRedirect for one listener (its scheme and spec port are baked in).

    Location defaults (Gateway API HTTPRequestRedirectFilter): scheme from the listener,
    hostname from the request's Host without port, port: the filter's port, else none when
    the filter sets a scheme (its well-known port), else the listener's port; a port equal
    to the scheme's well-known port is never printed. The query string is kept.
    """

    __slots__ = ("hostname", "path", "port", "scheme", "status")

    def __init__(self, redirect: ir.RequestRedirect, *, listener_scheme: str, spec_port: int):
        scheme = _b(redirect.scheme or listener_scheme).lower()
        port: int | None
        if redirect.port is not None:
            port = redirect.port
        elif redirect.scheme is not None:
            port = None
        else:
            port = spec_port
        if port == _WELL_KNOWN_PORTS.get(scheme):
            port = None
        self.status = redirect.status_code
        self.hostname = None if redirect.hostname is None else _hostname(redirect.hostname)
        self.scheme = scheme + b"://"
        self.port = b"" if port is None else b":%d" % port
        self.path = None if redirect.path is None else PathEdit(redirect.path)

    def location(self, host: bytes, path: bytes, query: bytes | None) -> bytes:
        """``host`` is the request's Host header as received (port is stripped here)."""
        name = self.hostname if self.hostname is not None else strip_port(host)
        if self.path is not None:
            path = self.path.apply(path)
        target = path if query is None else path + b"?" + query
        return b"".join((self.scheme, name, self.port, target))


def strip_port(host: bytes) -> bytes:
    if host.startswith(b"["):
        end = host.find(b"]")
        return host[: end + 1] if end != -1 else host
    name, sep, port = host.rpartition(b":")
    return name if sep and port.isdigit() else host


class Rewrite:
    """A compiled URLRewrite: new Host and/or path (query string kept)."""

    __slots__ = ("hostname", "path")

    def __init__(self, rewrite: ir.URLRewrite) -> None:
        self.hostname = None if rewrite.hostname is None else _hostname(rewrite.hostname)
        self.path = None if rewrite.path is None else PathEdit(rewrite.path)


# --- CORS (GEP-1767) --------------------------------------------------------------------

_DEFAULT_PORTS: Final = {b"http": 80, b"https": 443}


def normalize_origin(origin: bytes) -> tuple[bytes, bytes, int] | None:
    """``scheme://host[:port]`` -> (scheme, host, port), lower-case, default port filled in;
    None for anything else (``null``, paths, bad ports...)."""
    scheme, sep, hostport = origin.strip().lower().partition(b"://")
    if not sep or scheme not in _DEFAULT_PORTS or not hostport or b"/" in hostport:
        return None
    if hostport.startswith(b"["):
        end = hostport.find(b"]")
        if end == -1:
            return None
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if rest and not rest.startswith(b":"):
            return None
        port_text = rest[1:]
    else:
        host, sep, port_text = hostport.partition(b":")
        if not sep:
            port_text = b""
    if not host:
        return None
    if port_text:
        if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
            return None
        port = int(port_text)
    else:
        port = _DEFAULT_PORTS[scheme]
    return scheme, host, port


class Cors:
    """A compiled HTTPCORSFilter.

    Preflights (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) are
    answered by the gateway: :meth:`preflight` gives the response headers (none for an
    origin that is not allowed). For other requests :meth:`response_edit` gives what to
    add to the backend's response. ``Access-Control-Allow-Origin`` always echoes the
    request's Origin, which is valid both with and without credentials.
    """

    __slots__ = (
        "_allow_headers",
        "_allow_methods",
        "_credentials",
        "_expose",
        "_max_age",
        "_star_headers",
        "_star_methods",
        "allow_all",
        "origins",
        "patterns",
    )

    def __init__(self, policy: ir.CORSPolicy) -> None:
        self.allow_all = policy.allow_all_origins
        self.origins = frozenset(_b(o) for o in policy.origins)
        self.patterns = tuple((_b(p.scheme), _b(p.suffix), p.port) for p in policy.origin_patterns)
        credentials = policy.allow_credentials
        self._credentials = credentials
        self._star_methods = "*" in policy.allow_methods
        self._allow_methods = _b(", ".join(policy.allow_methods))
        self._star_headers = "*" in policy.allow_headers
        self._allow_headers = _b(", ".join(policy.allow_headers))
        expose = [h for h in policy.expose_headers if not (credentials and h == "*")]
        self._expose = _b(", ".join(expose))
        self._max_age = b"%d" % policy.max_age

    def allows(self, origin: bytes) -> bool:
        if self.allow_all:
            return True
        parsed = normalize_origin(origin)
        if parsed is None:
            return False
        scheme, host, port = parsed
        if b"%s://%s:%d" % (scheme, host, port) in self.origins:
            return True
        for p_scheme, suffix, p_port in self.patterns:
            if (
                p_scheme == scheme
                and p_port == port
                and (not suffix or (host.endswith(suffix) and len(host) > len(suffix)))
            ):
                return True
        return False

    def _common(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        headers = [(b"access-control-allow-origin", origin)]
        if self._credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        if self._expose:
            headers.append((b"access-control-expose-headers", self._expose))
        return headers

    def preflight(
        self, origin: bytes, method: bytes, request_headers: bytes | None
    ) -> list[tuple[bytes, bytes]]:
        """Headers of the gateway's answer to a preflight; empty when not allowed."""
        if not self.allows(origin):
            return []
        headers = self._common(origin)
        if self._star_methods:
            headers.append((b"access-control-allow-methods", method if self._credentials else b"*"))
        elif self._allow_methods:
            headers.append((b"access-control-allow-methods", self._allow_methods))
        if self._star_headers:
            if not self._credentials:
                headers.append((b"access-control-allow-headers", b"*"))
            elif request_headers:
                headers.append((b"access-control-allow-headers", request_headers))
        elif self._allow_headers:
            headers.append((b"access-control-allow-headers", self._allow_headers))
        headers.append((b"access-control-max-age", self._max_age))
        headers.append((b"vary", b"Origin"))
        return headers

    def response_edit(self, origin: bytes) -> HeaderEdit | None:
        """What a forwarded (non-preflight) request's response gets; None if not allowed."""
        if not self.allows(origin):
            return None
        return HeaderEdit.setting(
            [(name, name, value) for name, value in self._common(origin)],
            add=[(b"vary", b"vary", b"Origin")],
        )
