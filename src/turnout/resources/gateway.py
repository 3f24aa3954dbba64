"""GatewayClass and Gateway models (``apis/v1/gatewayclass_types.go``, ``gateway_types.go``).

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). Schema
constraints (types, enums, patterns, ranges, list sizes) are enforced by the models;
the CEL rules of the CRDs (listener/TLS combinations, uniqueness) are checked in
``turnout.resources.validation`` so that their errors carry precise field paths.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from turnout.resources.fields import (
    AddressType,
    ControllerName,
    Group,
    Hostname,
    Kind,
    LabelValue,
    Namespace,
    ObjectName,
    PortNumber,
    ProtocolType,
    QualifiedName,
    SectionName,
)
from turnout.resources.meta import (
    GATEWAY_GROUP,
    GatewayAPIModel,
    LabelSelector,
    ObjectReference,
    SecretObjectReference,
    TopLevelObject,
)

# --- GatewayClass ---------------------------------------------------------------------


class ParametersReference(GatewayAPIModel):
    group: Group
    kind: Kind
    name: Annotated[str, Field(min_length=1, max_length=253)]
    namespace: Namespace | None = None


class GatewayClassSpec(GatewayAPIModel):
    controller_name: ControllerName
    parameters_ref: ParametersReference | None = None
    description: Annotated[str, Field(max_length=64)] | None = None


class GatewayClass(TopLevelObject):
    cluster_scoped: ClassVar[bool] = True

    kind: Literal["GatewayClass"] = "GatewayClass"
    spec: GatewayClassSpec


# --- Gateway --------------------------------------------------------------------------


class RouteGroupKind(GatewayAPIModel):
    group: Group = GATEWAY_GROUP
    kind: Kind


class RouteNamespaces(GatewayAPIModel):
    from_: Literal["All", "Same", "Selector"] = Field(default="Same", alias="from")
    selector: LabelSelector | None = None


class AllowedRoutes(GatewayAPIModel):
    namespaces: RouteNamespaces = RouteNamespaces()
    kinds: Annotated[list[RouteGroupKind], Field(max_length=8)] = []


class GatewayTLSConfig(GatewayAPIModel):
    """A listener's ``tls`` block (``ListenerTLSConfig`` in the Go API)."""

    mode: Literal["Terminate", "Passthrough"] = "Terminate"
    certificate_refs: Annotated[list[SecretObjectReference], Field(max_length=64)] = []
    options: Annotated[
        dict[QualifiedName, Annotated[str, Field(max_length=4096)]], Field(max_length=16)
    ] = {}


ListenerTLSConfig = GatewayTLSConfig


class Listener(GatewayAPIModel):
    name: SectionName
    hostname: Hostname | None = None
    port: PortNumber
    protocol: ProtocolType
    tls: GatewayTLSConfig | None = None
    allowed_routes: AllowedRoutes = AllowedRoutes()


class GatewaySpecAddress(GatewayAPIModel):
    type: AddressType = "IPAddress"
    value: Annotated[str, Field(max_length=253)] | None = None


class LocalParametersReference(GatewayAPIModel):
    group: Group
    kind: Kind
    name: Annotated[str, Field(min_length=1, max_length=253)]


class GatewayInfrastructure(GatewayAPIModel):
    labels: Annotated[dict[QualifiedName, LabelValue], Field(max_length=8)] = {}
    annotations: Annotated[
        dict[QualifiedName, Annotated[str, Field(max_length=4096)]], Field(max_length=16)
    ] = {}
    parameters_ref: LocalParametersReference | None = None


class FrontendTLSValidation(GatewayAPIModel):
    """Client certificate validation (mTLS) of HTTPS listeners (GEP-91)."""

    ca_certificate_refs: Annotated[list[ObjectReference], Field(min_length=1, max_length=16)]
    mode: Literal["AllowValidOnly", "AllowInsecureFallback"] = "AllowValidOnly"


class TLSConfig(GatewayAPIModel):
    """``TLSConfig``: settings shared by the HTTPS listeners of a port (or all ports)."""

    validation: FrontendTLSValidation | None = None


class TLSPortConfig(GatewayAPIModel):
    port: PortNumber
    tls: TLSConfig


class FrontendTLSConfig(GatewayAPIModel):
    default: TLSConfig
    per_port: Annotated[list[TLSPortConfig], Field(max_length=64)] = []


class GatewayBackendTLS(GatewayAPIModel):
    """The client certificate the Gateway presents when it originates TLS to backends."""

    client_certificate_ref: SecretObjectReference | None = None


class GatewayTLS(GatewayAPIModel):
    """``spec.tls`` of a Gateway (``GatewayTLSConfig`` in the Go API; the name is taken
    here by the listener's ``tls`` block)."""

    backend: GatewayBackendTLS | None = None
    frontend: FrontendTLSConfig | None = None


class ListenerNamespaces(GatewayAPIModel):
    """Which namespaces' ListenerSets may attach (``AllowedListeners.namespaces``)."""

    from_: Literal["All", "Selector", "Same", "None"] = Field(default="None", alias="from")
    selector: LabelSelector | None = None


class AllowedListeners(GatewayAPIModel):
    namespaces: ListenerNamespaces = ListenerNamespaces()


class GatewaySpec(GatewayAPIModel):
    gateway_class_name: ObjectName
    listeners: Annotated[list[Listener], Field(min_length=1, max_length=64)]
    addresses: Annotated[list[GatewaySpecAddress], Field(max_length=16)] = []
    infrastructure: GatewayInfrastructure | None = None
    # Absent: no ListenerSet may attach (the same as ``namespaces.from: None``).
    allowed_listeners: AllowedListeners | None = None
    tls: GatewayTLS | None = None
    # A string enum in the CRD (not an object): ``All`` or ``None``.
    default_scope: Literal["All", "None"] | None = None


class Gateway(TopLevelObject):
    kind: Literal["Gateway"] = "Gateway"
    spec: GatewaySpec
