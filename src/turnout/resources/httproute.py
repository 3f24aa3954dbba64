"""HTTPRoute models (``apis/v1/httproute_types.go``).

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). Defaults
follow the CRD: a route without rules gets one rule, a rule without matches gets one
``PathPrefix /`` match, a backendRef weighs 1, a redirect answers 302. Cross-field CEL
rules (filter/type consistency, ReplacePrefixMatch, path values, ...) are checked in
``turnout.resources.routevalidation``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from turnout.resources.fields import (
    CORSOrigin,
    Duration,
    HeaderName,
    Hostname,
    PortNumber,
    PreciseHostname,
    SectionName,
    Weight,
    int_range,
)
from turnout.resources.meta import (
    AnyDict,
    BackendObjectReference,
    GatewayAPIModel,
    LocalObjectReference,
    ParentReference,
    TopLevelObject,
)

HTTPMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
CORSMethod = Literal[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "*"
]
FilterType = Literal[
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
    "CORS",
    "ExternalAuth",
    "ExtensionRef",
]

HeaderValue = Annotated[str, Field(min_length=1, max_length=4096)]

# --- matches --------------------------------------------------------------------------


class HTTPPathMatch(GatewayAPIModel):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: Annotated[str, Field(max_length=1024)] = "/"


class HTTPHeaderMatch(GatewayAPIModel):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: HeaderName
    value: HeaderValue


class HTTPQueryParamMatch(GatewayAPIModel):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: HeaderName
    value: Annotated[str, Field(min_length=1, max_length=1024)]


class HTTPRouteMatch(GatewayAPIModel):
    path: HTTPPathMatch = HTTPPathMatch()
    headers: Annotated[list[HTTPHeaderMatch], Field(max_length=16)] = []
    query_params: Annotated[list[HTTPQueryParamMatch], Field(max_length=16)] = []
    method: HTTPMethod | None = None


# --- filters --------------------------------------------------------------------------


class HTTPHeader(GatewayAPIModel):
    name: HeaderName
    value: HeaderValue


class HTTPHeaderFilter(GatewayAPIModel):
    set: Annotated[list[HTTPHeader], Field(max_length=16)] = []
    add: Annotated[list[HTTPHeader], Field(max_length=16)] = []
    remove: Annotated[list[HeaderName], Field(max_length=16)] = []


class HTTPPathModifier(GatewayAPIModel):
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    replace_full_path: Annotated[str, Field(max_length=1024)] | None = None
    replace_prefix_match: Annotated[str, Field(max_length=1024)] | None = None


class HTTPRequestRedirectFilter(GatewayAPIModel):
    scheme: Literal["http", "https"] | None = None
    hostname: PreciseHostname | None = None
    path: HTTPPathModifier | None = None
    port: PortNumber | None = None
    status_code: Literal[301, 302, 303, 307, 308] = 302


class HTTPURLRewriteFilter(GatewayAPIModel):
    hostname: PreciseHostname | None = None
    path: HTTPPathModifier | None = None


class Fraction(GatewayAPIModel):
    numerator: Annotated[int, AfterValidator(int_range(0, 2**31 - 1))]
    denominator: Annotated[int, AfterValidator(int_range(1, 2**31 - 1))] = 100


class HTTPRequestMirrorFilter(GatewayAPIModel):
    backend_ref: BackendObjectReference
    percent: Annotated[int, AfterValidator(int_range(0, 100))] | None = None
    fraction: Fraction | None = None


class HTTPCORSFilter(GatewayAPIModel):
    allow_origins: Annotated[list[CORSOrigin], Field(max_length=64)] = []
    allow_credentials: bool | None = None
    allow_methods: Annotated[list[CORSMethod], Field(max_length=9)] = []
    allow_headers: Annotated[list[HeaderName], Field(max_length=64)] = []
    expose_headers: Annotated[list[HeaderName], Field(max_length=64)] = []
    max_age: Annotated[int, AfterValidator(int_range(1, 2**31 - 1))] = 5


class HTTPRouteFilter(GatewayAPIModel):
    type: FilterType
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    request_redirect: HTTPRequestRedirectFilter | None = None
    url_rewrite: HTTPURLRewriteFilter | None = None
    cors: HTTPCORSFilter | None = None
    # Experimental; typed by later work.
    external_auth: AnyDict | None = None
    extension_ref: LocalObjectReference | None = None


# --- backends, rules, route -----------------------------------------------------------


class BackendRef(BackendObjectReference):
    weight: Weight = 1


class HTTPBackendRef(BackendRef):
    filters: Annotated[list[HTTPRouteFilter], Field(max_length=16)] = []


class HTTPRouteTimeouts(GatewayAPIModel):
    request: Duration | None = None
    backend_request: Duration | None = None


# RFC 6265 cookie-name = token, as HeaderName (CookieName in apis/v1/shared_types.go).
CookieName = HeaderName


class CookieConfig(GatewayAPIModel):
    name: CookieName | None = None
    path: Annotated[str, Field(max_length=1024)] = "/"
    lifetime_type: Literal["Permanent", "Session"] = "Session"


class HeaderConfig(GatewayAPIModel):
    name: HeaderName


class SessionPersistence(GatewayAPIModel):
    """GEP-1619 (experimental). The CEL rules tying ``type`` to ``cookie``/``header``
    and Permanent cookies to ``absoluteTimeout`` are in ``validation``."""

    absolute_timeout: Duration | None = None
    type: Literal["Cookie", "Header"] = "Cookie"
    cookie: CookieConfig | None = None
    header: HeaderConfig | None = None


class HTTPRouteRule(GatewayAPIModel):
    name: SectionName | None = None
    matches: Annotated[list[HTTPRouteMatch], Field(max_length=64)] = [HTTPRouteMatch()]
    filters: Annotated[list[HTTPRouteFilter], Field(max_length=16)] = []
    backend_refs: Annotated[list[HTTPBackendRef], Field(max_length=16)] = []
    timeouts: HTTPRouteTimeouts | None = None
    # Experimental; typed by later work.
    retry: AnyDict | None = None
    session_persistence: SessionPersistence | None = None


class HTTPRouteSpec(GatewayAPIModel):
    parent_refs: Annotated[list[ParentReference], Field(max_length=32)] = []
    hostnames: Annotated[list[Hostname], Field(max_length=16)] = []
    rules: Annotated[list[HTTPRouteRule], Field(min_length=1, max_length=16)] = [HTTPRouteRule()]
    # Experimental (GEP-3793); ``All`` or ``None``.
    use_default_gateways: Literal["All", "None"] | None = None


class HTTPRoute(TopLevelObject):
    kind: Literal["HTTPRoute"] = "HTTPRoute"
    spec: HTTPRouteSpec
