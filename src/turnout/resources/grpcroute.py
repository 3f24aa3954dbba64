"""GRPCRoute models (``apis/v1/grpcroute_types.go``, GEP-1016).

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). Defaults
follow the CRD: a method or header match is ``Exact``, a backendRef weighs 1. Unlike
HTTPRoute, the CRD gives ``rules`` and ``matches`` no default: a route without rules
has nothing to route, and a rule without matches matches every gRPC request (the graph
and the IR read it that way). Header modifiers and mirrors reuse the HTTPRoute types,
as the Go API does. Cross-field CEL rules (service/method syntax, filter/type
consistency, unrepeatable filters) are checked in ``turnout.resources.routevalidation``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from turnout.resources.fields import HeaderName, Hostname, SectionName
from turnout.resources.httproute import (
    BackendRef,
    HeaderValue,
    HTTPHeaderFilter,
    HTTPRequestMirrorFilter,
)
from turnout.resources.meta import (
    AnyDict,
    GatewayAPIModel,
    LocalObjectReference,
    ParentReference,
    TopLevelObject,
)

GRPCFilterType = Literal[
    "RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"
]

ServiceOrMethod = Annotated[str, Field(max_length=1024)]


class GRPCMethodMatch(GatewayAPIModel):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    service: ServiceOrMethod | None = None
    method: ServiceOrMethod | None = None


class GRPCHeaderMatch(GatewayAPIModel):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: HeaderName
    value: HeaderValue


class GRPCRouteMatch(GatewayAPIModel):
    method: GRPCMethodMatch | None = None
    headers: Annotated[list[GRPCHeaderMatch], Field(max_length=16)] = []


class GRPCRouteFilter(GatewayAPIModel):
    type: GRPCFilterType
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    extension_ref: LocalObjectReference | None = None


class GRPCBackendRef(BackendRef):
    filters: Annotated[list[GRPCRouteFilter], Field(max_length=16)] = []


class GRPCRouteRule(GatewayAPIModel):
    name: SectionName | None = None
    matches: Annotated[list[GRPCRouteMatch], Field(max_length=64)] = []
    filters: Annotated[list[GRPCRouteFilter], Field(max_length=16)] = []
    backend_refs: Annotated[list[GRPCBackendRef], Field(max_length=16)] = []
    # Experimental; reported as unsupported by the graph.
    session_persistence: AnyDict | None = None


class GRPCRouteSpec(GatewayAPIModel):
    parent_refs: Annotated[list[ParentReference], Field(max_length=32)] = []
    hostnames: Annotated[list[Hostname], Field(max_length=16)] = []
    rules: Annotated[list[GRPCRouteRule], Field(max_length=16)] = []
    # Experimental (GEP-3793); ``All`` or ``None``.
    use_default_gateways: Literal["All", "None"] | None = None


class GRPCRoute(TopLevelObject):
    kind: Literal["GRPCRoute"] = "GRPCRoute"
    spec: GRPCRouteSpec
