"""Kubernetes core models: Namespace, Service, EndpointSlice, Secret, ConfigMap.

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). Only the
fields turnout needs are modelled; other fields are ignored without warnings (these
are not Gateway API CRDs, and real cluster dumps carry many fields we never read).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from turnout.resources.fields import (
    CONFIG_KEY_RE,
    IANA_SVC_NAME_RE,
    DNS1035Name,
    int_range,
    string_check,
)
from turnout.resources.meta import CoreModel, CoreTopLevelObject

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _check_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    return value


ConfigKey = Annotated[
    str,
    AfterValidator(
        string_check(
            max_len=253,
            pattern=CONFIG_KEY_RE,
            what="a valid key (alphanumerics, '-', '_' or '.')",
        )
    ),
]
Base64Data = dict[ConfigKey, Annotated[str, AfterValidator(_check_base64)]]

# --- Namespace ------------------------------------------------------------------------


class Namespace(CoreTopLevelObject):
    cluster_scoped: ClassVar[bool] = True

    kind: Literal["Namespace"] = "Namespace"

    @property
    def namespace(self) -> str:
        return ""


# --- Service --------------------------------------------------------------------------


def _check_target_port(value: Any) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be a port number or a port name")
    if isinstance(value, int):
        return int_range(1, 65535)(value)
    if isinstance(value, str):
        # The API server accepts a numeric string as a number (IntOrString).
        if value.isdigit():
            return int_range(1, 65535)(int(value))
        return string_check(
            max_len=15, pattern=IANA_SVC_NAME_RE, what="a valid port name (IANA service name)"
        )(value)
    raise ValueError("must be a port number or a port name")


class ServicePort(CoreModel):
    name: DNS1035Name | None = None
    port: Annotated[int, AfterValidator(int_range(1, 65535))]
    target_port: Annotated[int | str | None, BeforeValidator(_check_target_port)] = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    app_protocol: str | None = None
    node_port: int | None = None


class ServiceSpec(CoreModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = "ClusterIP"
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    ports: list[ServicePort] = []
    selector: dict[str, str] = {}
    external_name: str | None = None


class Service(CoreTopLevelObject):
    kind: Literal["Service"] = "Service"
    spec: ServiceSpec = ServiceSpec()


# --- EndpointSlice --------------------------------------------------------------------


class EndpointConditions(CoreModel):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class EndpointSliceEndpoint(CoreModel):
    addresses: Annotated[list[str], Field(min_length=1, max_length=100)]
    conditions: EndpointConditions = EndpointConditions()
    hostname: str | None = None
    target_ref: dict[str, Any] | None = None
    node_name: str | None = None
    zone: str | None = None


class EndpointPort(CoreModel):
    name: str | None = None
    port: Annotated[int, AfterValidator(int_range(0, 65535))] | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    app_protocol: str | None = None


class EndpointSlice(CoreTopLevelObject):
    kind: Literal["EndpointSlice"] = "EndpointSlice"
    address_type: Literal["IPv4", "IPv6", "FQDN"]
    endpoints: Annotated[list[EndpointSliceEndpoint], Field(max_length=1000)] = []
    ports: Annotated[list[EndpointPort], Field(max_length=100)] | None = None

    @property
    def service_name(self) -> str | None:
        """The owning Service (label ``kubernetes.io/service-name``), if any."""
        return self.metadata.labels.get(SERVICE_NAME_LABEL)


# --- Secret and ConfigMap -------------------------------------------------------------


class Secret(CoreTopLevelObject):
    kind: Literal["Secret"] = "Secret"
    type: str = "Opaque"
    data: Base64Data = {}
    string_data: dict[ConfigKey, str] = {}
    immutable: bool | None = None

    def get_bytes(self, key: str) -> bytes | None:
        """The decoded value of ``key`` (``stringData`` wins, as on the API server)."""
        if key in self.string_data:
            return self.string_data[key].encode()
        if key in self.data:
            return base64.b64decode(self.data[key])
        return None


class ConfigMap(CoreTopLevelObject):
    kind: Literal["ConfigMap"] = "ConfigMap"
    data: dict[ConfigKey, str] = {}
    binary_data: Base64Data = {}
    immutable: bool | None = None
