"""UDPRoute models (``apis/v1/udproute_types.go``, GEP-2645; v1alpha2 served too).

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). Same shape
as TCPRoute: one rule of 1-16 weighted backendRefs (up to 16 rules in v1alpha2,
checked in ``turnout.resources.routevalidation``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from turnout.resources.meta import GatewayAPIModel, ParentReference, TopLevelObject
from turnout.resources.tcproute import L4RouteRule


class UDPRouteSpec(GatewayAPIModel):
    parent_refs: Annotated[list[ParentReference], Field(max_length=32)] = []
    rules: Annotated[list[L4RouteRule], Field(min_length=1, max_length=16)]
    use_default_gateways: Literal["All", "None"] | None = None


class UDPRoute(TopLevelObject):
    kind: Literal["UDPRoute"] = "UDPRoute"
    spec: UDPRouteSpec
