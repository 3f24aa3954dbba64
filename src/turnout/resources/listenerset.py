"""ListenerSet (``apis/v1/listenerset_types.go``, GEP-1713): listeners added to a Gateway.

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). A
ListenerSet names one parent Gateway; its listener entries have the same shape and the
same CEL rules as a Gateway's listeners (checked in ``turnout.resources.validation``).
Whether the Gateway lets it attach (``spec.allowedListeners``) is the graph's business.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from turnout.resources.fields import Group, Kind, Namespace, ObjectName
from turnout.resources.gateway import Listener
from turnout.resources.meta import GATEWAY_GROUP, GatewayAPIModel, TopLevelObject


class ParentGatewayReference(GatewayAPIModel):
    group: Group = GATEWAY_GROUP
    kind: Kind = "Gateway"
    name: ObjectName
    namespace: Namespace | None = None


# A ListenerEntry has exactly the fields of a Gateway Listener.
ListenerEntry = Listener


class ListenerSetSpec(GatewayAPIModel):
    parent_ref: ParentGatewayReference
    listeners: Annotated[list[ListenerEntry], Field(min_length=1, max_length=64)]


class ListenerSet(TopLevelObject):
    kind: Literal["ListenerSet"] = "ListenerSet"
    spec: ListenerSetSpec

    @property
    def parent_key(self) -> tuple[str, str]:
        """(namespace, name) of the parent Gateway."""
        return (self.spec.parent_ref.namespace or self.namespace, self.spec.parent_ref.name)
