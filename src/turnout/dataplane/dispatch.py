"""Routing one parsed request: a local answer (404, redirect, CORS preflight) or a target.

Part of the data plane. Shared by the HTTP/1.1 front (``http1.ClientConnection``) and
the HTTP/2 front (``http2``), which hand it an exchange (a ``forwarding.Forwarding``: an
``exchange.Exchange`` or an ``h2stream.H2Stream``) and the request's parsed head; it decides
what the exchange does and starts forwarding, with mirrors, through the routing tables
of ``router``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Final

from turnout.dataplane import messages as msg
from turnout.dataplane.messages import RequestHeaders
from turnout.dataplane.mirror import MirrorExchange
from turnout.dataplane.router import RequestView, Target
from turnout.dataplane.stats import (
    BAD_REQUEST,
    CORS_PREFLIGHT,
    INVALID_BACKEND,
    METHOD_NOT_ALLOWED,
    MISDIRECTED,
    NO_ENDPOINT,
    NO_ROUTE,
    REDIRECT,
)
from turnout.dataplane.upstream import EndpointPool

if TYPE_CHECKING:
    from turnout.dataplane.forwarding import Forwarding
    from turnout.dataplane.http1 import ClientConnection

_CONNECT: Final = b"CONNECT"
_HEAD: Final = b"HEAD"
_OPTIONS: Final = b"OPTIONS"
# The byte value: ``int in bytes`` is one memchr (a bytes operand is first tried as an
# integer, which costs a TypeError; see http1._HASH_BYTE).
_QUERY_BYTE: Final = 63  # ord("?")


def route_request(
    exchange: Forwarding,
    method: bytes,
    url: bytes,
    request: msg.RequestHeaders,
    client: ClientConnection,
) -> None:
    """Decide what ``exchange`` does: a local answer (404, redirect...) or forward upstream."""
    exchange.head_request = method == _HEAD
    exchange.has_body = request.content_length or request.chunked
    if method == _CONNECT:
        exchange.local_status(405, METHOD_NOT_ALLOWED)
        return
    if request.upgrade:
        # Never kept alive: llhttp parses nothing after an upgrade request. A handshake
        # (WebSocket...) without a body is passed on; the 101 turns the connection into a
        # tunnel. Otherwise it is served as a plain request (h2c is HTTP/2's business,
        # RFC 9113 3.1 drops it) and what follows is lost.
        exchange.keep_alive = False
        protocol = request.upgrade_protocol
        if protocol is not None:
            if exchange.has_body and _header(request.kept, b"content-length") != b"0":
                # llhttp hands a body sent with Connection: upgrade to the upgraded
                # protocol, unparsed: it cannot be forwarded as a body (nor dropped safely).
                exchange.local_status(400, BAD_REQUEST)
                return
            exchange.has_body = False
            if protocol.lower() != b"h2c":
                exchange.upgrade = protocol
    if _QUERY_BYTE in url:
        path, sep, query = url.partition(b"?")
    else:  # most requests: no partition() call (by name, a tuple and copies)
        path, sep, query = url, b"", b""
    vhost = client.lookup(request.host)
    if vhost is None:
        exchange.local_status(404, NO_ROUTE)
        return
    view = RequestView(method, request.kept, query) if vhost.needs_view else None
    rule = vhost.select(path, view)
    if rule is None:
        exchange.local_status(404, NO_ROUTE)
        return
    sticky = rule.sticky
    pinned: EndpointPool | None = None
    if sticky is None:
        target = rule.choose()
    else:  # sessionPersistence: the session's backend and endpoint, or a new session
        target, pinned, issued = sticky.route(rule, request.kept)
        if issued is not None:
            target = target.with_response_edit(issued)
    cors = rule.cors
    if cors is not None:
        origin = _header(request.kept, b"origin")
        if origin is not None:
            request_method = _header(request.kept, b"access-control-request-method")
            if method == _OPTIONS and request_method is not None:
                # A preflight: answered here, never forwarded (GEP-1767).
                allowed = cors.preflight(
                    origin,
                    request_method,
                    _header(request.kept, b"access-control-request-headers"),
                )
                exchange.local_answer(
                    msg.headers_response(204, allowed, exchange.connection_header()),
                    CORS_PREFLIGHT,
                )
                return
            edit = cors.response_edit(origin)
            if edit is not None and target.cluster is not None:
                target = target.with_response_edit(edit)
    if target.status is not None:
        reason = MISDIRECTED if target.status == 421 else INVALID_BACKEND
        exchange.local_status(target.status, reason)
    elif target.redirect is not None:
        location = target.redirect.location(request.host, path, query if sep else None)
        exchange.local_answer(
            msg.redirect_response(target.redirect.status, location, exchange.connection_header()),
            REDIRECT,
        )
    else:
        _forward(exchange, method, url, request, target, client, pinned)


def _header(headers: list[tuple[bytes, bytes, bytes]], lname: bytes) -> bytes | None:
    """A request header's value, repeated lines joined with ","."""
    values = [value for name, _, value in headers if name == lname]
    if not values:
        return None
    return values[0] if len(values) == 1 else b",".join(values)


def _forward(
    exchange: Forwarding,
    method: bytes,
    url: bytes,
    request: RequestHeaders,
    target: Target,
    client: ClientConnection,
    pinned: EndpointPool | None = None,
) -> None:
    pool = pinned
    if pool is None:
        cluster = target.cluster
        pool = None if cluster is None else cluster.pick()
    if pool is None:
        exchange.target = target  # counted for its cluster (stats); unused by a local answer
        exchange.local_status(503, NO_ENDPOINT)  # a cluster without ready endpoints
        return
    headers = request.kept
    for edit in target.request_edits:
        headers = edit.apply(headers)
    host = request.host
    if target.rewrite:  # else the request target is forwarded as received
        path, sep, query = url.partition(b"?")
        for rewrite in target.rewrite:
            if rewrite.hostname is not None:
                host = rewrite.hostname
            if rewrite.path is not None:
                path = rewrite.path.apply(path)
        url = path + sep + query
    if request.xff is None:
        forwarded = client.forwarded
        if request.verbatim and not target.request_edits and not target.rewrite:
            # Nothing to change but the proxy's own fields: the head as received (no
            # Upgrade, body or hop-by-hop field, see RequestHeaders.plain) plus those.
            head = b"".join((request.verbatim, forwarded, b"\r\n"))
            exchange.forward(pool, head, target, False)
            if target.mirrors:
                _start_mirrors(exchange, target, head)
            return
    else:
        forwarded = msg.forwarded_headers(client.client_ip, request.xff, client.scheme)
    head = msg.request_head(
        method, url, host, headers, forwarded, request.chunked, exchange.upgrade
    )
    exchange.forward(pool, head, target, request.chunked)
    if target.mirrors:
        _start_mirrors(exchange, target, head)


def _start_mirrors(exchange: Forwarding, target: Target, head: bytes) -> None:
    """Copy the request to each mirror that fires; a body follows via Exchange.mirrors."""
    started: list[MirrorExchange] = []
    for mirror in target.mirrors:
        if mirror.probability >= 1.0 or random.random() < mirror.probability:
            mirror_pool = mirror.cluster.pick()
            if mirror_pool is not None:
                copy = MirrorExchange(
                    head, complete=not exchange.has_body, head_request=exchange.head_request
                )
                copy.start(mirror_pool)
                started.append(copy)
    if started and exchange.has_body:
        exchange.mirrors = started
