"""TLSRoute models (``apis/v1/tlsroute_types.go``, GEP-2643; v1alpha2/v1alpha3 served too).

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). A TLSRoute
routes TLS streams by the SNI name of the ClientHello: ``hostnames`` (no IPs, optional
leading ``*.`` label) are matched against it, then the stream goes to 1-16 weighted
backendRefs. In v1 and v1alpha3 ``hostnames`` is required (1-1024) and there is
exactly one rule; v1alpha2 makes ``hostnames`` optional and allows up to 16 rules.
Those version-dependent limits are checked in ``turnout.resources.routevalidation``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from turnout.resources.fields import Hostname
from turnout.resources.meta import GatewayAPIModel, ParentReference, TopLevelObject
from turnout.resources.tcproute import L4RouteRule


class TLSRouteSpec(GatewayAPIModel):
    parent_refs: Annotated[list[ParentReference], Field(max_length=32)] = []
    hostnames: Annotated[list[Hostname], Field(max_length=1024)] = []
    rules: Annotated[list[L4RouteRule], Field(min_length=1, max_length=16)]
    use_default_gateways: Literal["All", "None"] | None = None


class TLSRoute(TopLevelObject):
    kind: Literal["TLSRoute"] = "TLSRoute"
    spec: TLSRouteSpec
