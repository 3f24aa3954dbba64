"""messages: HTTP/1.1 message heads as bytes, built and filtered without I/O.

Place in the pipeline: used by :mod:`turnout.dataplane.http1` (and the echo backend) to
turn parsed header lists into the byte strings written on the wire. Everything here is a
pure function of its arguments so it can be tested without sockets.

Conventions: header lists as delivered by httptools are ``[(name, value)]`` bytes pairs in
received case; after hop-by-hop filtering the proxy keeps ``(lower-case name, name,
value)`` triples (see :data:`turnout.dataplane.filters.Header`). Status lines and local
responses are precomputed once.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

from turnout.dataplane.filters import Header, HeaderEdit

# RFC 9110 7.6.1 plus the de-facto ones; Transfer-Encoding framing is redone by the proxy.
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# RFC 3986 3.2.2-3.2.3 host [":" port]: the characters of a reg-name, IPv4 or IP-literal.
# Anything else (spaces, quotes, "/", "@", obs-text) cannot name a host; RFC 9110 7.2
# requires a 400 for an invalid Host, and it keeps such bytes out of redirect Locations.
_HOST: Final = re.compile(
    rb"(?:\[[0-9A-Za-z:.\-_~!$&'()*+,;=]+\]|[0-9A-Za-z\-._~%!$&'()*+,;=]+)(?::[0-9]*)?"
)


# Hosts already found valid: clients send the same few Host values over and over, and a
# dict hit costs a tenth of the regular expression. Bounded (cleared when full).
_VALID_HOSTS: Final[dict[bytes, bool]] = {}
_VALID_HOSTS_LIMIT: Final = 1024


def valid_host(host: bytes) -> bool:
    """Whether ``host`` is a non-empty host[:port] (RFC 9110 4.2.1: no empty http host)."""
    if host in _VALID_HOSTS:
        return True
    if _HOST.fullmatch(host) is None:
        return False
    if len(_VALID_HOSTS) >= _VALID_HOSTS_LIMIT:
        _VALID_HOSTS.clear()
    _VALID_HOSTS[host] = True
    return True


# Lower-case header names by name as received: a few dozen spellings come over and over;
# a dict hit costs less than bytes.lower() (a method call and a new object, which is
# hashed again by every lookup that follows). Bounded: past the limit, names are lowered
# each time (a client inventing names cannot grow it).
_LOWER: Final[dict[bytes, bytes]] = {}
_LOWER_LIMIT: Final = 4096


def lower_name(name: bytes) -> bytes:
    """``name.lower()``, from a bounded cache."""
    lname = _LOWER.get(name)
    if lname is None:
        lname = name.lower()
        if len(_LOWER) < _LOWER_LIMIT:
            _LOWER[name] = lname
    return lname


# How many field positions a connection's LowerNames remembers.
_POSITIONS: Final = 32


class LowerNames:
    """Lower-case header names by position, for the messages of one connection.

    A client (or a backend) sends the same field names in the same order message after
    message. Comparing a name with the one received at its position last time (a length
    check and a memcmp) costs a fraction of :func:`lower_name`'s dict lookup, which
    hashes every name afresh: httptools hands over a new bytes object each time.
    """

    __slots__ = ("_lowers", "_names")

    def __init__(self) -> None:
        self._names: list[bytes] = []  # as received, by position
        self._lowers: list[bytes] = []  # lower_name() of each

    def lower(self, i: int, name: bytes) -> bytes:
        """``name.lower()`` for the field at position ``i`` of a message."""
        names = self._names
        if i < len(names):
            if names[i] == name:
                return self._lowers[i]
            lname = lower_name(name)
            names[i] = name
            self._lowers[i] = lname
            return lname
        lname = lower_name(name)
        if i == len(names) and i < _POSITIONS:
            names.append(name)
            self._lowers.append(lname)
        return lname


# Request headers the proxy handles itself rather than copying through.
_REQUEST_SPECIAL: Final = HOP_BY_HOP | {b"host", b"x-forwarded-for", b"x-forwarded-proto"}

STATUS_LINES: Final[dict[int, bytes]] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("ascii")) for s in HTTPStatus
}


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d Unknown\r\n" % status
    return line


# How the proxy ends a response head, by what happens to the client connection next.
CONN_KEEP: Final = b""  # HTTP/1.1 default
CONN_KEEP_10: Final = b"connection: keep-alive\r\n"  # HTTP/1.0 client that asked for keep-alive
CONN_CLOSE: Final = b"connection: close\r\n"


def connection_header(keep_alive: bool, http10: bool) -> bytes:
    if not keep_alive:
        return CONN_CLOSE
    return CONN_KEEP_10 if http10 else CONN_KEEP


_local_cache: Final[dict[tuple[int, bytes], bytes]] = {}


def local_response(status: int, connection: bytes) -> bytes:
    """A complete small response the proxy generates itself (404, 503, direct status...)."""
    key = (status, connection)
    cached = _local_cache.get(key)
    if cached is not None:
        return cached
    line = status_line(status)
    body = line[9:].strip() + b"\n" if status >= 200 and status not in (204, 304) else b""
    response = b"".join(
        (
            line,
            b"server: turnout\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n" % len(body),
            connection,
            b"\r\n",
            body,
        )
    )
    _local_cache[key] = response
    return response


def redirect_response(status: int, location: bytes, connection: bytes) -> bytes:
    return b"".join(
        (
            status_line(status),
            b"server: turnout\r\nlocation: ",
            location,
            b"\r\ncontent-length: 0\r\n",
            connection,
            b"\r\n",
        )
    )


def headers_response(status: int, headers: list[tuple[bytes, bytes]], connection: bytes) -> bytes:
    """A body-less local answer with extra headers (a CORS preflight)."""
    parts = [status_line(status), b"server: turnout\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    if status not in (204, 304):
        parts.append(b"content-length: 0\r\n")
    parts += (connection, b"\r\n")
    return b"".join(parts)


# --- requests ---------------------------------------------------------------------------------


class RequestHeaders:
    """The client's request headers split into what the proxy forwards and what it handles.

    ``kept`` holds the end-to-end headers in received order; Host, X-Forwarded-* and the
    hop-by-hop headers (including those named in Connection) are taken out.

    ``invalid`` flags what llhttp lets through but a proxy must not forward (request
    smuggling defences; llhttp itself rejects Content-Length with Transfer-Encoding,
    duplicate or malformed Content-Length, bad chunk sizes, obs-fold and control
    characters): a Transfer-Encoding other than exactly ``chunked`` (the proxy re-frames
    the body and would silently drop any other coding), more than one Host, and a Host
    that is not a host[:port].
    """

    __slots__ = (
        "chunked",
        "connection",
        "content_length",
        "host",
        "host_count",
        "invalid",
        "kept",
        "plain",
        "upgrade",
        "upgrade_protocol",
        "verbatim",
        "xff",
    )

    def __init__(
        self,
        raw: list[tuple[bytes, bytes]],
        names: LowerNames | None = None,
        valid: bytes = b"",
    ) -> None:
        kept: list[Header] = []
        host = b""
        xff: bytes | None = None
        chunked = False
        content_length = False
        connection_tokens: list[bytes] | None = None
        upgrade = False
        upgrade_value = b""
        invalid = False
        host_count = 0
        for i, (name, value) in enumerate(raw):
            lname = lower_name(name) if names is None else names.lower(i, name)
            if lname not in _REQUEST_SPECIAL:
                if lname == b"content-length":
                    content_length = True
                    value = value.rstrip(b" \t")  # llhttp keeps trailing OWS; not forwarded
                kept.append((lname, name, value))
            elif lname == b"host":
                host = value
                host_count += 1
            elif lname == b"x-forwarded-for":
                xff = value if xff is None else xff + b", " + value
            elif lname == b"transfer-encoding":
                chunked = True
                if value.strip().lower() != b"chunked":
                    invalid = True  # llhttp accepts "gzip, chunked": the gzip would be lost
            elif lname == b"connection":
                tokens = [t.strip().lower() for t in value.split(b",")]
                connection_tokens = (connection_tokens or []) + tokens
            elif lname == b"upgrade":
                upgrade = True
                upgrade_value = value if not upgrade_value else upgrade_value + b", " + value
        if connection_tokens:
            drop = set(connection_tokens) - {b"close", b"keep-alive", b"upgrade", b""}
            if drop:
                kept = [h for h in kept if h[0] not in drop]
        self.kept = kept
        self.connection = connection_tokens is not None  # a Connection field was received
        self.host = host
        self.xff = xff
        self.chunked = chunked
        self.content_length = content_length
        self.upgrade = upgrade
        # RFC 9110 7.8: an upgrade is requested only with "upgrade" in Connection too.
        self.upgrade_protocol = (
            upgrade_value.strip()
            if upgrade and connection_tokens and b"upgrade" in connection_tokens
            else None
        )
        self.host_count = host_count
        # ``valid``: a Host value found valid before (the connection's last one), or b"":
        # a compare (bytes to bytes: a primitive) instead of valid_host's dict lookup,
        # which hashes the fresh bytes object. An empty Host is never valid.
        self.invalid = (
            invalid
            or host_count > 1
            or (host_count == 1 and (host != valid or not host) and not valid_host(host))
        )
        # Every field is forwarded as received (no hop-by-hop or X-Forwarded-* field to
        # take out) and there is no body to re-frame: see verbatim_request_head.
        self.plain = not content_length and not chunked and len(kept) + host_count == len(raw)
        self.verbatim = b""  # set by the HTTP/1.1 front: the head as received, if usable


def verbatim_request_head(chunk: bytes, method: bytes, url: bytes) -> bytes:
    """The request line and field lines of an HTTP/1.1 head as received, without the
    blank line; b"" if ``chunk`` does not start with that request line.

    The caller passes the read in which this head was parsed, and only when the head is
    the first one of that read and began at its first byte (see ``ClientConnection``):
    the bytes are then exactly those llhttp validated (strict mode: CRLF line ends, no
    obs-fold). llhttp also skips empty lines before a request line and accepts several
    spaces between its parts; such a head is rebuilt instead. Forwarding these bytes
    plus the proxy's own fields costs one copy instead of a join of every field's name
    and value.
    """
    n = len(method)
    stop = n + 1 + len(url)
    if (
        not chunk.startswith(method)
        or chunk[n + 1 : stop] != url
        or chunk[stop : stop + 11] != b" HTTP/1.1\r\n"
    ):
        return b""
    end = chunk.find(b"\r\n\r\n")
    return chunk[: end + 2] if end > 0 else b""


def forwarded_headers(client_ip: bytes, xff: bytes | None, scheme: bytes = b"http") -> bytes:
    """X-Forwarded-For (appended to the client's) and X-Forwarded-Proto for the upstream."""
    chain = client_ip if xff is None else xff + b", " + client_ip
    return b"x-forwarded-for: " + chain + b"\r\nx-forwarded-proto: " + scheme + b"\r\n"


def request_head(
    method: bytes,
    target: bytes,
    host: bytes,
    headers: list[Header],
    forwarded: bytes,
    chunked: bool,
    upgrade: bytes | None = None,
) -> bytes:
    """The head sent upstream: always HTTP/1.1 with keep-alive (the pool reuses it), or
    asking for ``upgrade`` (a WebSocket handshake passed on)."""
    parts = [method, b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    for _lname, name, value in headers:
        # Four appends, not ``parts += (...)``: compiled, that builds a tuple per header.
        parts.append(name)
        parts.append(b": ")
        parts.append(value)
        parts.append(b"\r\n")
    parts.append(forwarded)
    if chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    if upgrade is not None:
        parts += (b"connection: upgrade\r\nupgrade: ", upgrade, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


# --- responses --------------------------------------------------------------------------------

# How the response body is written to the client.
BODY_NONE: Final = 0  # no body (HEAD, 1xx, 204, 304)
BODY_LENGTH: Final = 1  # Content-Length from upstream, bytes copied through
BODY_CHUNKED: Final = 2  # re-chunked by the proxy (upstream chunked or close-delimited)
BODY_UNTIL_CLOSE: Final = 3  # HTTP/1.0 client: body ends when the proxy closes the connection


def response_has_body(status: int, head_request: bool) -> bool:
    return not (head_request or status < 200 or status == 204 or status == 304)


class ResponseHead:
    """The upstream response head, filtered and re-framed for the client.

    ``invalid`` is set for a 1xx with Content-Length or Transfer-Encoding (found by
    fuzz/upstream_response.py), and for a Transfer-Encoding other than exactly ``chunked``: llhttp then
    reads the body until close (or accepts "gzip, chunked"), and the proxy, which
    re-frames bodies, would pass on content in a coding the client is not told about.

    ``verbatim`` (given when the head as received is available, see
    ``UpstreamConnection.head_end``): when set on the result, the head needs no change
    at all -- HTTP/1.1, no hop-by-hop field, no filter, a Content-Length body for an
    HTTP/1.1 client kept alive -- and ``data`` is empty: the caller passes on the head
    as received instead of a copy rebuilt field by field.
    """

    __slots__ = ("body_mode", "data", "invalid", "keep_alive", "upstream_framed", "verbatim")

    def __init__(
        self,
        status: int,
        raw: list[tuple[bytes, bytes]],
        *,
        head_request: bool,
        http10: bool,
        keep_alive: bool,
        edits: tuple[HeaderEdit, ...],
        verbatim: bool = False,
        names: LowerNames | None = None,
    ) -> None:
        # Whether the head may pass as received, if its fields allow (see the loop).
        verbatim = (
            verbatim
            and not edits
            and keep_alive
            and not http10
            and not head_request
            and status >= 200
            and status != 204
            and status != 304
        )
        parts: list[bytes] | None = None if verbatim else [status_line(status)]
        has_length = False
        upstream_chunked = False
        invalid = False
        hop = False
        drop: set[bytes] | None = None
        triples: list[Header] | None = [] if edits else None
        for i, (name, value) in enumerate(raw):
            lname = lower_name(name) if names is None else names.lower(i, name)
            if lname in HOP_BY_HOP:
                hop = True
                if lname == b"transfer-encoding":
                    upstream_chunked = True
                    invalid = invalid or value.strip().lower() != b"chunked"
                elif lname == b"connection":
                    tokens = {t.strip().lower() for t in value.split(b",")}
                    drop = tokens if drop is None else drop | tokens
                continue
            if lname == b"content-length":
                has_length = True
            if triples is not None:
                triples.append((lname, name, value))
            elif parts is not None:
                parts.append(name)  # appends: see request_head
                parts.append(b": ")
                parts.append(value)
                parts.append(b"\r\n")
        if verbatim and has_length and not hop:  # no Transfer-Encoding: valid framing
            self.verbatim = True
            self.invalid = False
            self.upstream_framed = True
            self.data = b""
            self.body_mode = BODY_LENGTH
            self.keep_alive = True
            return
        self.verbatim = False
        if parts is None or drop or triples is not None:
            parts = [status_line(status)]
            for _lname, name, value in _filtered(raw, drop, triples, edits):
                parts += (name, b": ", value, b"\r\n")
        if status < 200:
            body_mode = BODY_NONE
            keep_alive = True  # an interim response; the final one decides
            # RFC 9110 15.2: a 1xx ends with its head. llhttp still reads a body for
            # some codes (179 with a Content-Length) while clients read none: refuse.
            invalid = invalid or has_length or upstream_chunked
        elif head_request or status == 204 or status == 304:  # see response_has_body
            body_mode = BODY_NONE
        elif has_length and not upstream_chunked:
            body_mode = BODY_LENGTH
        elif http10:
            body_mode = BODY_UNTIL_CLOSE
            keep_alive = False
        else:
            body_mode = BODY_CHUNKED
            parts.append(b"transfer-encoding: chunked\r\n")
        if status < 200:
            parts.append(b"\r\n")
        elif keep_alive and not http10:
            parts.append(b"\r\n")  # connection_header(): nothing for HTTP/1.1 keep-alive
        else:
            parts += (connection_header(keep_alive, http10), b"\r\n")
        self.data = b"".join(parts)
        self.invalid = invalid
        self.body_mode = body_mode
        self.keep_alive = keep_alive
        # Whether the upstream's message has its own end (else it ends at upstream EOF).
        self.upstream_framed = has_length or upstream_chunked or body_mode == BODY_NONE


def switching_protocols_head(
    raw: list[tuple[bytes, bytes]], requested: bytes, edits: tuple[HeaderEdit, ...]
) -> bytes:
    """The 101 head relayed to the client when the upstream accepted an upgrade.

    End-to-end headers (Sec-WebSocket-Accept...) are filtered and edited as in any
    response; Connection and Upgrade are hop-by-hop, so they are written afresh, with
    the upstream's Upgrade value (``requested`` if it sent none).
    """
    protocol = requested
    for name, value in raw:
        if name.lower() == b"upgrade":
            protocol = value
    drop: set[bytes] = set()
    for name, value in raw:
        if name.lower() == b"connection":
            drop |= {t.strip().lower() for t in value.split(b",")}
    parts = [status_line(101)]
    for _lname, name, value in _filtered(raw, drop, None, edits):
        parts += (name, b": ", value, b"\r\n")
    parts += (b"connection: upgrade\r\nupgrade: ", protocol, b"\r\n\r\n")
    return b"".join(parts)


def _filtered(
    raw: list[tuple[bytes, bytes]],
    drop: set[bytes] | None,
    triples: list[Header] | None,
    edits: tuple[HeaderEdit, ...],
) -> list[Header]:
    """Slow path: headers named in Connection removed, response header filters applied."""
    if triples is None:
        triples = [(n.lower(), n, v) for n, v in raw if n.lower() not in HOP_BY_HOP]
    if drop:
        triples = [h for h in triples if h[0] not in drop]
    for edit in edits:
        triples = edit.apply(triples)
    return triples


def chunk(data: bytes) -> tuple[bytes, bytes, bytes]:
    """One chunk of a chunked body, as three buffers for writelines/joins."""
    return (b"%x\r\n" % len(data), data, b"\r\n")


LAST_CHUNK: Final = b"0\r\n\r\n"
