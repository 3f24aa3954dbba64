"""Base classes, ObjectMeta, label selectors and the shared reference types.

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). The models
are frozen pydantic models whose Python attributes are the snake_case of the JSON
field names (aliases are the camelCase JSON names). Defaults are the ones the API
server applies from the CRD schema, so the graph never has to re-derive them.

Gateway API models allow unknown fields during validation (``extra="allow"``): a newer
CRD version may carry fields we do not know yet. ``turnout.resources.parse`` removes
them after validation and reports each one as a warning. Core models (Service,
Secret, ...) model only the subset turnout needs and ignore everything else silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from turnout.resources.fields import (
    DNS1035_LABEL_RE,
    DNS1123_LABEL_RE,
    DNS1123_SUBDOMAIN_RE,
    Group,
    Kind,
    LabelValue,
    Namespace,
    ObjectName,
    PortNumber,
    QualifiedName,
    SectionName,
    string_check,
)

GATEWAY_GROUP = "gateway.networking.k8s.io"


class GatewayAPIModel(BaseModel):
    """Base of every Gateway API model: frozen, camelCase aliases, strict types."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )


class CoreModel(BaseModel):
    """Base of the Kubernetes core models: like GatewayAPIModel, unknown fields ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )


# --- metadata -------------------------------------------------------------------------

Labels = dict[QualifiedName, LabelValue]


class ObjectMeta(CoreModel):
    """``metadata``. ``generation`` and ``creation_timestamp`` are filled by the source."""

    name: str
    namespace: Namespace | None = None
    labels: Labels = {}
    annotations: dict[QualifiedName, str] = {}
    creation_timestamp: str | None = None
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = None


def check_object_name(kind: str, name: str) -> str | None:
    """The API server's name check for ``kind``; a message, or None when valid."""
    if kind == "Namespace":
        checker = string_check(max_len=63, pattern=DNS1123_LABEL_RE, what="a valid RFC 1123 label")
    elif kind == "Service":
        checker = string_check(
            max_len=63,
            pattern=DNS1035_LABEL_RE,
            what="a valid RFC 1035 label (lower case alphanumerics or '-', starting with a letter)",
        )
    else:
        checker = string_check(
            max_len=253, pattern=DNS1123_SUBDOMAIN_RE, what="a valid RFC 1123 subdomain"
        )
    try:
        checker(name)
    except ValueError as exc:
        return str(exc)
    return None


# --- label selectors ------------------------------------------------------------------


class LabelSelectorRequirement(CoreModel):
    key: QualifiedName
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = []

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels


class LabelSelector(CoreModel):
    """``metav1.LabelSelector``. An empty selector matches every label set."""

    match_labels: Labels = {}
    match_expressions: list[LabelSelectorRequirement] = []

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        return all(req.matches(labels) for req in self.match_expressions)


# --- references -----------------------------------------------------------------------


class ParentReference(GatewayAPIModel):
    group: Group = GATEWAY_GROUP
    kind: Kind = "Gateway"
    namespace: Namespace | None = None
    name: ObjectName
    section_name: SectionName | None = None
    port: PortNumber | None = None


class BackendObjectReference(GatewayAPIModel):
    group: Group = ""
    kind: Kind = "Service"
    name: ObjectName
    namespace: Namespace | None = None
    port: PortNumber | None = None


class SecretObjectReference(GatewayAPIModel):
    group: Group = ""
    kind: Kind = "Secret"
    name: ObjectName
    namespace: Namespace | None = None


class LocalObjectReference(GatewayAPIModel):
    group: Group
    kind: Kind
    name: ObjectName


class ObjectReference(GatewayAPIModel):
    group: Group
    kind: Kind
    name: ObjectName
    namespace: Namespace | None = None


# --- top-level objects ----------------------------------------------------------------


class TopLevelObject(GatewayAPIModel):
    """Common part of every top-level object: ``apiVersion``, ``kind``, ``metadata``."""

    api_version: str
    metadata: ObjectMeta

    # Overridden by cluster-scoped kinds.
    cluster_scoped: ClassVar[bool] = False

    @property
    def namespace(self) -> str:
        """The effective namespace: ``metadata.namespace`` or ``default``; "" if cluster-scoped."""
        if self.cluster_scoped:
            return ""
        return self.metadata.namespace or "default"

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> tuple[str, str]:
        """``(namespace, name)``; the namespace is "" for cluster-scoped kinds."""
        return (self.namespace, self.metadata.name)


class CoreTopLevelObject(CoreModel):
    """Like TopLevelObject for the core kinds (unknown fields ignored)."""

    api_version: str
    metadata: ObjectMeta

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.metadata.name)


AnyDict = dict[str, Any]
"""Parts of a spec that are not typed yet; kept as plain JSON."""
