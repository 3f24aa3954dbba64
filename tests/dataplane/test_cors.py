"""CORS (GEP-1767): origin matching, preflight answers and simple-request headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from turnout import ir
from turnout.dataplane import DataPlane
from turnout.dataplane.filters import Cors, normalize_origin
from turnout.demo.echo import start_echo
from turnout.ir.build import cors_policy
from turnout.resources.httproute import HTTPCORSFilter

from .helpers import free_port, request, rule, simple_config, to

ADDR = "127.0.0.1"


def _cors(**spec: Any) -> Cors:
    return Cors(cors_policy(HTTPCORSFilter.model_validate(spec)))


def test_policy_is_precompiled() -> None:
    policy = cors_policy(
        HTTPCORSFilter.model_validate(
            {
                "allowOrigins": ["https://WWW.Foo.com", "http://a.com:8080", "https://*.bar.com"],
                "allowHeaders": ["X-Header-1"],
                "allowCredentials": True,
            }
        )
    )
    assert policy.origins == frozenset({"https://www.foo.com:443", "http://a.com:8080"})
    assert policy.origin_patterns == (ir.OriginPattern("https", ".bar.com", 443),)
    assert not policy.allow_all_origins
    assert policy.allow_headers == ("x-header-1",)
    assert policy.allow_credentials
    assert policy.max_age == 5
    assert ir.from_msgpack(ir.to_msgpack(_config_with(policy))) == _config_with(policy)


def _config_with(policy: ir.CORSPolicy) -> ir.Config:
    return simple_config(1, (rule(filters=ir.Filters(cors=policy)),))


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (b"https://www.foo.com", (b"https", b"www.foo.com", 443)),
        (b"HTTP://Foo.com:8080", (b"http", b"foo.com", 8080)),
        (b"http://[::1]:81", (b"http", b"[::1]", 81)),
        (b"null", None),
        (b"ftp://foo.com", None),
        (b"https://foo.com/path", None),
        (b"https://foo.com:99999", None),
        (b"https://", None),
    ],
)
def test_normalize_origin(origin: bytes, expected: object) -> None:
    assert normalize_origin(origin) == expected


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (b"https://www.foo.com", True),
        (b"https://www.foo.com:443", True),  # default port
        (b"https://WWW.FOO.COM", True),
        (b"http://www.foo.com", False),  # scheme matters
        (b"https://www.foo.com:8443", False),
        (b"https://www.bar.com", True),
        (b"https://a.b.bar.com", True),  # greedy left wildcard
        (b"https://xpto.www.bar.com:443", True),
        (b"https://bar.com", False),  # the wildcard needs at least one label
        (b"https://evilbar.com", False),
        (b"https://www.bar.com:8443", False),
        (b"http://www.bar.com", False),
        (b"http://x.baz.org:8080", True),
        (b"http://x.baz.org", False),
        (b"https://foobar.com", False),
        (b"null", False),
    ],
)
def test_origin_matching(origin: bytes, allowed: bool) -> None:
    cors = _cors(allowOrigins=["https://www.foo.com", "https://*.bar.com", "http://*.baz.org:8080"])
    assert cors.allows(origin) is allowed


def test_star_origin_allows_anything() -> None:
    cors = _cors(allowOrigins=["*"])
    assert cors.allows(b"https://foobar.com:12345")
    assert cors.allows(b"null")
    assert _cors(allowOrigins=["http://*"]).allows(b"http://any.thing")
    assert not _cors(allowOrigins=["http://*"]).allows(b"https://any.thing")


def test_preflight_headers() -> None:
    cors = _cors(
        allowOrigins=["https://www.foo.com"],
        allowMethods=["GET", "OPTIONS"],
        allowHeaders=["x-header-1", "x-header-2"],
        exposeHeaders=["x-header-3", "x-header-4"],
        allowCredentials=True,
        maxAge=3600,
    )
    headers = dict(cors.preflight(b"https://www.foo.com", b"GET", b"x-header-1"))
    assert headers == {
        b"access-control-allow-origin": b"https://www.foo.com",
        b"access-control-allow-credentials": b"true",
        b"access-control-allow-methods": b"GET, OPTIONS",
        b"access-control-allow-headers": b"x-header-1, x-header-2",
        b"access-control-expose-headers": b"x-header-3, x-header-4",
        b"access-control-max-age": b"3600",
        b"vary": b"Origin",
    }
    assert cors.preflight(b"https://foobar.com", b"GET", None) == []


@pytest.mark.parametrize(
    ("credentials", "methods", "headers"),
    [(False, b"*", b"*"), (True, b"PUT", b"x-a, x-b")],
)
def test_preflight_wildcards(credentials: bool, methods: bytes, headers: bytes) -> None:
    cors = _cors(
        allowOrigins=["*"], allowMethods=["*"], allowHeaders=["*"], allowCredentials=credentials
    )
    got = dict(cors.preflight(b"https://o.com", b"PUT", b"x-a, x-b"))
    assert got[b"access-control-allow-origin"] == b"https://o.com"
    assert got[b"access-control-allow-methods"] == methods
    assert got[b"access-control-allow-headers"] == headers
    assert got[b"access-control-max-age"] == b"5"
    assert (b"access-control-allow-credentials" in got) is credentials
    no_headers = dict(cors.preflight(b"https://o.com", b"PUT", None))
    assert (b"access-control-allow-headers" in no_headers) is not credentials


@pytest.fixture
async def dataplane() -> AsyncIterator[DataPlane]:
    dp = DataPlane()
    yield dp
    await dp.close(drain_timeout=1.0)


@pytest.mark.timeout(30)
async def test_dataplane_preflight_and_simple_requests(dataplane: DataPlane) -> None:
    echo = await start_echo(ADDR, 0, name="a")
    try:
        clusters = {"a": [(ADDR, echo.sockets[0].getsockname()[1])]}
        policy = cors_policy(
            HTTPCORSFilter.model_validate(
                {
                    "allowOrigins": ["https://www.foo.com", "https://*.bar.com"],
                    "allowMethods": ["GET", "OPTIONS"],
                    "exposeHeaders": ["x-header-3"],
                    "allowCredentials": True,
                }
            )
        )
        routes = (rule("cors", backends=(to("a"),), filters=ir.Filters(cors=policy)),)
        port = free_port()
        result = await dataplane.apply(simple_config(port, routes, clusters))
        assert set(result.values()) == {None}

        preflight = {"Origin": "https://a.b.bar.com", "Access-Control-Request-Method": "GET"}
        response = await request(ADDR, port, "/x", method="OPTIONS", headers=preflight)
        assert response.status == 204
        assert response.body == b""  # answered by the gateway, not the echo backend
        assert response.header("access-control-allow-origin") == "https://a.b.bar.com"
        assert response.header("access-control-allow-methods") == "GET, OPTIONS"
        assert response.header("access-control-allow-credentials") == "true"
        assert response.header("access-control-max-age") == "5"

        denied = {"Origin": "https://foobar.com", "Access-Control-Request-Method": "GET"}
        response = await request(ADDR, port, "/x", method="OPTIONS", headers=denied)
        assert response.status == 204
        assert response.body == b""
        assert response.header("access-control-allow-origin") is None

        # OPTIONS without Access-Control-Request-Method is an ordinary request.
        response = await request(
            ADDR, port, "/x", method="OPTIONS", headers={"Origin": "https://www.foo.com"}
        )
        assert response.status == 200
        assert response.json()["method"] == "OPTIONS"

        response = await request(ADDR, port, "/x", headers={"Origin": "https://www.foo.com"})
        assert response.status == 200
        assert response.json()["path"] == "/x"
        assert response.header("access-control-allow-origin") == "https://www.foo.com"
        assert response.header("access-control-allow-credentials") == "true"
        assert response.header("access-control-expose-headers") == "x-header-3"

        response = await request(ADDR, port, "/x", headers={"Origin": "https://foobar.com"})
        assert response.status == 200
        assert response.header("access-control-allow-origin") is None
        response = await request(ADDR, port, "/x")
        assert response.status == 200
        assert response.header("access-control-allow-origin") is None
    finally:
        echo.close()
