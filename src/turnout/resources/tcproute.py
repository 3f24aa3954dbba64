"""TCPRoute models (``apis/v1/tcproute_types.go``, GEP-2644; v1alpha2 served too).

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). A TCPRoute
forwards every connection of the listener it attaches to: there is nothing to match,
so a rule is only a name and 1-16 weighted backendRefs. The v1 CRD allows exactly one
rule; the deprecated v1alpha2 version (still served by the experimental channel)
allows up to 16. That limit depends on the apiVersion, so it is checked in
``turnout.resources.routevalidation``; the models carry the wider one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from turnout.resources.fields import SectionName
from turnout.resources.httproute import BackendRef
from turnout.resources.meta import GatewayAPIModel, ParentReference, TopLevelObject

L4_API_VERSIONS_V1 = ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1alpha3")
"""Versions whose schema is apis/v1 (exactly one rule; TLSRoute hostnames required)."""


class L4RouteRule(GatewayAPIModel):
    """``TCPRouteRule`` / ``TLSRouteRule`` / ``UDPRouteRule``: the same shape."""

    name: SectionName | None = None
    backend_refs: Annotated[list[BackendRef], Field(min_length=1, max_length=16)]


class TCPRouteSpec(GatewayAPIModel):
    parent_refs: Annotated[list[ParentReference], Field(max_length=32)] = []
    rules: Annotated[list[L4RouteRule], Field(min_length=1, max_length=16)]
    use_default_gateways: Literal["All", "None"] | None = None


class TCPRoute(TopLevelObject):
    kind: Literal["TCPRoute"] = "TCPRoute"
    spec: TCPRouteSpec
