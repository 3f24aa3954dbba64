"""ReferenceGrant model (``apis/v1/referencegrant_types.go``, GEP-709).

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). A grant
lives in the namespace of the referenced objects; ``from`` lists the trusted
referrers, ``to`` the local objects they may reference (all of a kind when ``name`` is
unset).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from turnout.resources.fields import Group, Kind, Namespace, ObjectName
from turnout.resources.meta import GatewayAPIModel, TopLevelObject


class ReferenceGrantFrom(GatewayAPIModel):
    group: Group
    kind: Kind
    namespace: Namespace


class ReferenceGrantTo(GatewayAPIModel):
    group: Group
    kind: Kind
    name: ObjectName | None = None


class ReferenceGrantSpec(GatewayAPIModel):
    from_: Annotated[list[ReferenceGrantFrom], Field(min_length=1, max_length=16)] = Field(
        alias="from"
    )
    to: Annotated[list[ReferenceGrantTo], Field(min_length=1, max_length=16)]


class ReferenceGrant(TopLevelObject):
    kind: Literal["ReferenceGrant"] = "ReferenceGrant"
    spec: ReferenceGrantSpec
