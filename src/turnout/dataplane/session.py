"""session: session persistence (GEP-1619) -- a client sticks to the backend it was given.

Place in the pipeline: :mod:`turnout.dataplane.router` compiles a rule's
``ir.SessionPersistence`` into a :class:`StickyRule` on the rule;
:mod:`turnout.dataplane.http1` asks it, per request of that rule, which backendRef and
endpoint to use (:meth:`StickyRule.route`). Rules without it never reach this module.

The session token -- the cookie value, or the header value for ``type: Header`` -- is
self-contained: which backendRef of the rule (its index; weight 0 included, GEP-1619
"Traffic Splitting": a session outlives a weight change), which endpoint (address and
port), and when it was issued, followed by an HMAC-SHA256 (truncated to 128 bits) over
the rule's identity and those fields. So the gateway keeps no session table, any worker
process validates any other's tokens (the key comes from the IR: ``Config.session_key``,
drawn once by the control plane), a token from one rule is worthless on another (GEP-1619:
rules never share sessions), and a client cannot aim its token at an endpoint of its
choosing. A token is honoured while it is authentic, younger than ``absoluteTimeout``,
and its backendRef still has that endpoint, not ejected by passive health checking;
otherwise the request is balanced as usual and a new token is issued (Set-Cookie, or the
header, on the response). A valid token is not re-issued: ``absoluteTimeout`` counts
from the session's start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from turnout.dataplane.filters import Header, HeaderAppend
from turnout.ir.model import SessionPersistence

if TYPE_CHECKING:
    from turnout.dataplane.router import Rule, Target
    from turnout.dataplane.upstream import EndpointPool

_MAC_SIZE = 16
_FIXED = struct.Struct("!BIH")  # backendRef index, issued (Unix seconds), port

# The signing key of this process: the IR's, or a random one (DataPlane used alone).
_key = os.urandom(32)
_key_source = ""


def use_key(session_key: str) -> None:
    """Sign and check tokens with the configuration's key (base64, may be empty)."""
    global _key, _key_source
    if session_key == _key_source:
        return
    _key_source = session_key
    try:
        _key = base64.b64decode(session_key, validate=True) if session_key else os.urandom(32)
    except (binascii.Error, ValueError):
        _key = hashlib.sha256(session_key.encode()).digest()


def _mac(session: bytes, payload: bytes) -> bytes:
    return hmac.new(_key, session + b"\0" + payload, hashlib.sha256).digest()[:_MAC_SIZE]


def encode_token(session: bytes, index: int, host: str, port: int, issued: int) -> bytes:
    payload = _FIXED.pack(index, issued, port) + host.encode("ascii")
    return base64.urlsafe_b64encode(payload + _mac(session, payload)).rstrip(b"=")


def decode_token(session: bytes, token: bytes) -> tuple[int, str, int, int] | None:
    """(backendRef index, host, port, issued) of an authentic token, else None."""
    if len(token) > 256:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) <= _FIXED.size + _MAC_SIZE:
        return None
    payload, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
    if not hmac.compare_digest(mac, _mac(session, payload)):
        return None
    index, issued, port = _FIXED.unpack_from(payload)
    try:
        host = payload[_FIXED.size :].decode("ascii")
    except UnicodeDecodeError:
        return None
    return index, host, port, issued


def cookie_value(headers: Sequence[Header], name: bytes) -> bytes | None:
    """The value of cookie ``name`` in the request's Cookie headers (first one wins)."""
    for lname, _, value in headers:
        if lname != b"cookie":
            continue
        for pair in value.split(b";"):
            key, sep, val = pair.strip().partition(b"=")
            if sep and key == name:
                return val.strip().strip(b'"')
    return None


def _header_value(headers: Sequence[Header], lname: bytes) -> bytes | None:
    for name, _, value in headers:
        if name == lname:
            return value.strip()
    return None


class _Backend:
    """One backendRef of a sticky rule: its target and endpoints by (host, port)."""

    __slots__ = ("pools", "target")

    def __init__(self, target: Target) -> None:
        self.target = target
        cluster = target.cluster
        pools = () if cluster is None else cluster.pools
        self.pools: dict[tuple[str, int], EndpointPool] = {(p.host, p.port): p for p in pools}


class StickyRule:
    """A rule's compiled sessionPersistence; ``targets`` are all its backendRefs in order."""

    __slots__ = ("_attributes", "_backends", "_index", "cookie", "name", "session", "timeout")

    def __init__(self, spec: SessionPersistence, targets: Sequence[Target], *, tls: bool):
        self.session = spec.session.encode()
        self.cookie = spec.type == "Cookie"
        self.name = spec.name.encode("ascii") if self.cookie else spec.name.lower().encode()
        self.timeout = spec.absolute_timeout
        self._backends = [_Backend(target) for target in targets]
        self._index = {id(target): i for i, target in enumerate(targets)}
        attributes = b"; Path=" + spec.path.encode("ascii")
        if spec.permanent and spec.absolute_timeout is not None:
            attributes += b"; Max-Age=%d" % max(1, int(spec.absolute_timeout))
        # GEP-1619 "Secure, HttpOnly, SameSite": security by default (Secure needs HTTPS).
        attributes += b"; HttpOnly; SameSite=Strict" + (b"; Secure" if tls else b"")
        self._attributes = attributes

    def route(
        self, rule: Rule, headers: Sequence[Header]
    ) -> tuple[Target, EndpointPool | None, HeaderAppend | None]:
        """(target, endpoint pinned or None, response edit issuing a new session or None)."""
        token = (
            cookie_value(headers, self.name) if self.cookie else _header_value(headers, self.name)
        )
        if token is not None:
            found = self._resume(token)
            if found is not None:
                return found[0], found[1], None
        target = rule.choose()
        index = self._index.get(id(target))
        cluster = target.cluster
        if index is None or cluster is None:
            return target, None, None  # a local answer (500 share, redirect): no session
        pool = cluster.pick()
        if pool is None:
            return target, None, None  # no endpoint: 503, no session
        value = encode_token(self.session, index, pool.host, pool.port, int(time.time()))
        if self.cookie:
            edit = HeaderAppend(
                (b"set-cookie", b"set-cookie", self.name + b"=" + value + self._attributes)
            )
        else:
            edit = HeaderAppend((self.name, self.name, value))
        return target, pool, edit

    def _resume(self, token: bytes) -> tuple[Target, EndpointPool] | None:
        decoded = decode_token(self.session, token)
        if decoded is None:
            return None
        index, host, port, issued = decoded
        if self.timeout is not None and time.time() - issued > self.timeout:
            return None  # absoluteTimeout passed: a new session
        if index >= len(self._backends):
            return None
        backend = self._backends[index]
        pool = backend.pools.get((host, port))
        if pool is None:
            return None  # the endpoint is gone: re-balanced (GEP-1619 failure behaviour)
        health = pool.health
        if health.ejected_until and not health.available(time.monotonic()):
            return None  # not serving (passive health checking): re-balanced
        return backend.target, pool
