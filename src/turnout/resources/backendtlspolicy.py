"""BackendTLSPolicy model (``apis/v1/backendtlspolicy_types.go``, GEP-1897).

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). The
policy tells the Gateway to originate TLS to the Service ports it targets, how to trust
the backend's certificate (``caCertificateRefs`` or ``wellKnownCACertificates``) and
which name to send as SNI and to check (``hostname``, or ``subjectAltNames``). The CEL
rules of the CRD (refs xor well-known, SAN type/value agreement, distinct targetRefs)
are checked in ``turnout.resources.validation``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from turnout.resources.fields import (
    Group,
    Hostname,
    Kind,
    ObjectName,
    PreciseHostname,
    QualifiedName,
    SectionName,
)
from turnout.resources.meta import GatewayAPIModel, LocalObjectReference, TopLevelObject


class LocalPolicyTargetReferenceWithSectionName(GatewayAPIModel):
    group: Group
    kind: Kind
    name: ObjectName
    section_name: SectionName | None = None


class SubjectAltName(GatewayAPIModel):
    """One accepted SAN: ``type`` Hostname with ``hostname``, or URI with ``uri``."""

    type: Literal["Hostname", "URI"]
    hostname: Hostname | None = None
    uri: Annotated[str, Field(max_length=253)] | None = None


WellKnownCACertificates = Annotated[
    str, Field(min_length=1, max_length=253, pattern=r"^(System|[a-z0-9.-]+/[A-Za-z0-9_.-]+)$")
]


class BackendTLSPolicyValidation(GatewayAPIModel):
    ca_certificate_refs: Annotated[list[LocalObjectReference], Field(max_length=8)] = []
    # Spelled with "CA" in capitals, which the camelCase alias generator would not do.
    well_known_ca_certificates: WellKnownCACertificates | None = Field(
        default=None, alias="wellKnownCACertificates"
    )
    hostname: PreciseHostname
    subject_alt_names: Annotated[list[SubjectAltName], Field(max_length=5)] = []


class BackendTLSPolicySpec(GatewayAPIModel):
    target_refs: Annotated[
        list[LocalPolicyTargetReferenceWithSectionName], Field(min_length=1, max_length=16)
    ]
    validation: BackendTLSPolicyValidation
    options: Annotated[
        dict[QualifiedName, Annotated[str, Field(max_length=4096)]], Field(max_length=16)
    ] = {}


class BackendTLSPolicy(TopLevelObject):
    kind: Literal["BackendTLSPolicy"] = "BackendTLSPolicy"
    spec: BackendTLSPolicySpec
