"""Session persistence tokens and StickyRule without sockets (dataplane/session.py)."""

from __future__ import annotations

import time

import pytest

from turnout.dataplane import session
from turnout.dataplane.router import Rule, Target
from turnout.dataplane.session import StickyRule, cookie_value, decode_token, encode_token
from turnout.dataplane.upstream import EndpointPool, UpstreamCluster
from turnout.ir.model import SessionPersistence

RULE = b"httproute/ns/r/rule/0"


@pytest.fixture(autouse=True)
def key() -> None:
    session.use_key("c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=")


def test_token_round_trip_and_tampering() -> None:
    token = encode_token(RULE, 2, "10.0.0.7", 8080, 1_700_000_000)
    assert decode_token(RULE, token) == (2, "10.0.0.7", 8080, 1_700_000_000)
    assert decode_token(b"httproute/ns/r/rule/1", token) is None  # another rule's session
    for i in range(len(token)):
        flipped = token[:i] + (b"A" if token[i : i + 1] != b"A" else b"B") + token[i + 1 :]
        assert decode_token(RULE, flipped) is None, i
    assert decode_token(RULE, b"") is None
    assert decode_token(RULE, b"!!!not-base64!!!") is None
    assert decode_token(RULE, b"A" * 300) is None


def test_another_key_rejects_the_token() -> None:
    token = encode_token(RULE, 0, "10.0.0.7", 80, 1)
    session.use_key("b3RoZXIta2V5")
    assert decode_token(RULE, token) is None


def test_cookie_value_among_others() -> None:
    headers = [
        (b"cookie", b"Cookie", b"a=1; sticky=tok1; b=2"),
        (b"cookie", b"Cookie", b"sticky=tok2"),
    ]
    assert cookie_value(headers, b"sticky") == b"tok1"
    assert cookie_value(headers, b"stick") is None
    assert cookie_value([(b"cookie", b"cookie", b'sticky="q"')], b"sticky") == b"q"


def _rule(spec: SessionPersistence) -> tuple[Rule, list[Target]]:
    targets = [
        Target(
            cluster=UpstreamCluster(
                "a", (EndpointPool("10.0.0.1", 80), EndpointPool("10.0.0.2", 80))
            )
        ),
        Target(cluster=UpstreamCluster("b", (EndpointPool("10.0.1.1", 80),))),
        Target(cluster=UpstreamCluster("c", (EndpointPool("10.0.2.1", 80),))),
    ]
    weighted = [(50, targets[0]), (50, targets[1]), (0, targets[2])]
    sticky = StickyRule(spec, targets, tls=False)
    return Rule(spec.session, lambda _p: True, (), weighted, sticky=sticky), targets


def test_new_session_then_sticks() -> None:
    spec = SessionPersistence("Cookie", "sticky", RULE.decode(), path="/app")
    rule, _ = _rule(spec)
    assert rule.sticky is not None
    target, pool, issued = rule.sticky.route(rule, [])
    assert pool is not None and issued is not None
    line = issued.line[2]
    assert line.startswith(b"sticky=") and b"; Path=/app; HttpOnly; SameSite=Strict" in line
    assert b"Max-Age" not in line  # a Session cookie
    token = line.split(b";")[0].split(b"=", 1)[1]
    for _ in range(50):
        again = rule.sticky.route(rule, [(b"cookie", b"Cookie", b"sticky=" + token)])
        assert again == (target, pool, None)


def test_weight_zero_backend_keeps_its_sessions() -> None:
    """GEP-1619: a session outlives its backendRef's weight dropping to 0."""
    spec = SessionPersistence("Header", "X-Session", RULE.decode())
    rule, targets = _rule(spec)
    assert rule.sticky is not None
    token = encode_token(RULE, 2, "10.0.2.1", 80, int(time.time()))
    target, pool, issued = rule.sticky.route(rule, [(b"x-session", b"X-Session", token)])
    assert (target, issued) == (targets[2], None)
    assert pool is not None and pool.host == "10.0.2.1"


def test_expired_or_unknown_endpoint_gets_a_new_session() -> None:
    spec = SessionPersistence("Cookie", "s", RULE.decode(), absolute_timeout=60, permanent=True)
    rule, _ = _rule(spec)
    assert rule.sticky is not None
    old = encode_token(RULE, 0, "10.0.0.1", 80, int(time.time()) - 61)
    gone = encode_token(RULE, 0, "10.9.9.9", 80, int(time.time()))
    for token in (old, gone):
        _, pool, issued = rule.sticky.route(rule, [(b"cookie", b"Cookie", b"s=" + token)])
        assert pool is not None and issued is not None
        assert b"; Max-Age=60;" in issued.line[2]


def test_config_dump_redacts_the_session_key() -> None:
    """/config shows no key; the msgpack sent to workers carries it."""
    from turnout import ir

    config = ir.Config(session_key="c2VjcmV0LWtleQ==")
    assert b"c2VjcmV0LWtleQ" not in ir.to_json(config)
    assert b"<redacted>" in ir.to_json(config)
    assert ir.from_msgpack(ir.to_msgpack(config)).session_key == "c2VjcmV0LWtleQ=="
