"""Status conditions: one named constructor per case, reasons spelled as in the spec.

Every constructor returns a `Condition` without time or generation: those are stamped
when the status is written (`turnout.status.compute`), so the graph stays a pure function
of its input. Reason names come from apis/v1 (gatewayclass_types.go, gateway_types.go,
shared_types.go); each constant's prefix says which condition type it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str


# --- condition types -------------------------------------------------------------------
ACCEPTED = "Accepted"
PROGRAMMED = "Programmed"
RESOLVED_REFS = "ResolvedRefs"
CONFLICTED = "Conflicted"
SUPPORTED_VERSION = "SupportedVersion"
PARTIALLY_INVALID = "PartiallyInvalid"

# --- reasons ---------------------------------------------------------------------------
CLASS_ACCEPTED_ACCEPTED = "Accepted"
CLASS_ACCEPTED_INVALID_PARAMETERS = "InvalidParameters"
CLASS_SUPPORTED_VERSION = "SupportedVersion"

GATEWAY_ACCEPTED_ACCEPTED = "Accepted"
GATEWAY_ACCEPTED_LISTENERS_NOT_VALID = "ListenersNotValid"
GATEWAY_ACCEPTED_INVALID = "Invalid"
GATEWAY_ACCEPTED_INVALID_PARAMETERS = "InvalidParameters"
GATEWAY_ACCEPTED_UNSUPPORTED_ADDRESS = "UnsupportedAddress"
GATEWAY_PROGRAMMED_PROGRAMMED = "Programmed"
GATEWAY_PROGRAMMED_INVALID = "Invalid"
GATEWAY_PROGRAMMED_PENDING = "Pending"
GATEWAY_PROGRAMMED_ADDRESS_NOT_ASSIGNED = "AddressNotAssigned"
GATEWAY_PROGRAMMED_ADDRESS_NOT_USABLE = "AddressNotUsable"

LISTENER_ACCEPTED_ACCEPTED = "Accepted"
LISTENER_ACCEPTED_UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
LISTENER_ACCEPTED_PORT_UNAVAILABLE = "PortUnavailable"
LISTENER_RESOLVED_REFS_RESOLVED = "ResolvedRefs"
LISTENER_RESOLVED_REFS_INVALID_ROUTE_KINDS = "InvalidRouteKinds"
LISTENER_RESOLVED_REFS_INVALID_CERTIFICATE_REF = "InvalidCertificateRef"
LISTENER_RESOLVED_REFS_REF_NOT_PERMITTED = "RefNotPermitted"
LISTENER_ACCEPTED_UNSUPPORTED_VALUE = "UnsupportedValue"
LISTENER_PROGRAMMED_PROGRAMMED = "Programmed"
LISTENER_PROGRAMMED_INVALID = "Invalid"
LISTENER_PROGRAMMED_PENDING = "Pending"
LISTENER_CONFLICTED_NO_CONFLICTS = "NoConflicts"
LISTENER_CONFLICTED_HOSTNAME = "HostnameConflict"
LISTENER_CONFLICTED_PROTOCOL = "ProtocolConflict"

ROUTE_ACCEPTED_ACCEPTED = "Accepted"
ROUTE_ACCEPTED_NOT_ALLOWED_BY_LISTENERS = "NotAllowedByListeners"
ROUTE_ACCEPTED_NO_MATCHING_LISTENER_HOSTNAME = "NoMatchingListenerHostname"
ROUTE_ACCEPTED_NO_MATCHING_PARENT = "NoMatchingParent"
ROUTE_ACCEPTED_UNSUPPORTED_VALUE = "UnsupportedValue"
ROUTE_RESOLVED_REFS_RESOLVED = "ResolvedRefs"
ROUTE_RESOLVED_REFS_REF_NOT_PERMITTED = "RefNotPermitted"
ROUTE_RESOLVED_REFS_BACKEND_NOT_FOUND = "BackendNotFound"
ROUTE_RESOLVED_REFS_INVALID_KIND = "InvalidKind"
ROUTE_RESOLVED_REFS_UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
ROUTE_PARTIALLY_INVALID_UNSUPPORTED_VALUE = "UnsupportedValue"

# The conditions almost every route carries, made once: a Condition is immutable, and
# status compares the conditions of unchanged routes with the last ones
# (compute.RouteStatusCache), which the same object makes an identity check.
_ROUTE_ACCEPTED = Condition(ACCEPTED, "True", ROUTE_ACCEPTED_ACCEPTED, "Route is accepted")
_ROUTE_RESOLVED_REFS = Condition(
    RESOLVED_REFS, "True", ROUTE_RESOLVED_REFS_RESOLVED, "All references are resolved"
)


# --- GatewayClass ----------------------------------------------------------------------


def class_accepted() -> Condition:
    return Condition(ACCEPTED, "True", CLASS_ACCEPTED_ACCEPTED, "Accepted by turnout")


def class_invalid_parameters(message: str) -> Condition:
    return Condition(ACCEPTED, "False", CLASS_ACCEPTED_INVALID_PARAMETERS, message)


def class_supported_version() -> Condition:
    return Condition(
        SUPPORTED_VERSION,
        "True",
        CLASS_SUPPORTED_VERSION,
        "turnout supports the Gateway API v1 resources it reads",
    )


# --- Gateway ---------------------------------------------------------------------------


def gateway_accepted() -> Condition:
    return Condition(ACCEPTED, "True", GATEWAY_ACCEPTED_ACCEPTED, "Gateway is accepted")


def gateway_accepted_listeners_not_valid(message: str) -> Condition:
    return Condition(ACCEPTED, "True", GATEWAY_ACCEPTED_LISTENERS_NOT_VALID, message)


def gateway_not_accepted_listeners_not_valid(message: str) -> Condition:
    return Condition(ACCEPTED, "False", GATEWAY_ACCEPTED_LISTENERS_NOT_VALID, message)


def gateway_not_accepted_invalid(message: str) -> Condition:
    return Condition(ACCEPTED, "False", GATEWAY_ACCEPTED_INVALID, message)


def gateway_invalid_parameters(message: str) -> Condition:
    return Condition(ACCEPTED, "False", GATEWAY_ACCEPTED_INVALID_PARAMETERS, message)


def gateway_unsupported_address(message: str) -> Condition:
    return Condition(ACCEPTED, "False", GATEWAY_ACCEPTED_UNSUPPORTED_ADDRESS, message)


def gateway_programmed() -> Condition:
    return Condition(PROGRAMMED, "True", GATEWAY_PROGRAMMED_PROGRAMMED, "Gateway is programmed")


def gateway_not_programmed_invalid(message: str) -> Condition:
    return Condition(PROGRAMMED, "False", GATEWAY_PROGRAMMED_INVALID, message)


def gateway_programmed_pending() -> Condition:
    return Condition(
        PROGRAMMED, "Unknown", GATEWAY_PROGRAMMED_PENDING, "Waiting for the data plane"
    )


def gateway_address_not_assigned(message: str) -> Condition:
    return Condition(PROGRAMMED, "False", GATEWAY_PROGRAMMED_ADDRESS_NOT_ASSIGNED, message)


def gateway_address_not_usable(message: str) -> Condition:
    """A requested static address cannot be used (outside the pool, or taken)."""
    return Condition(PROGRAMMED, "False", GATEWAY_PROGRAMMED_ADDRESS_NOT_USABLE, message)


# --- Listener --------------------------------------------------------------------------


def listener_accepted() -> Condition:
    return Condition(ACCEPTED, "True", LISTENER_ACCEPTED_ACCEPTED, "Listener is accepted")


def listener_unsupported_protocol(message: str) -> Condition:
    return Condition(ACCEPTED, "False", LISTENER_ACCEPTED_UNSUPPORTED_PROTOCOL, message)


def listener_port_unavailable(message: str) -> Condition:
    return Condition(ACCEPTED, "False", LISTENER_ACCEPTED_PORT_UNAVAILABLE, message)


def listener_not_accepted_conflicted(reason: str, message: str) -> Condition:
    return Condition(ACCEPTED, "False", reason, message)


def listener_resolved_refs() -> Condition:
    return Condition(
        RESOLVED_REFS, "True", LISTENER_RESOLVED_REFS_RESOLVED, "All references are resolved"
    )


def listener_invalid_route_kinds(message: str) -> Condition:
    return Condition(RESOLVED_REFS, "False", LISTENER_RESOLVED_REFS_INVALID_ROUTE_KINDS, message)


def listener_unresolved_refs(reason: str, message: str) -> Condition:
    """ResolvedRefs=False; reason is one of the LISTENER_RESOLVED_REFS_* constants."""
    return Condition(RESOLVED_REFS, "False", reason, message)


def listener_unsupported_value(message: str) -> Condition:
    return Condition(ACCEPTED, "False", LISTENER_ACCEPTED_UNSUPPORTED_VALUE, message)


def listener_programmed() -> Condition:
    return Condition(
        PROGRAMMED, "True", LISTENER_PROGRAMMED_PROGRAMMED, "Listener is serving traffic"
    )


def listener_not_programmed_invalid(message: str) -> Condition:
    return Condition(PROGRAMMED, "False", LISTENER_PROGRAMMED_INVALID, message)


def listener_programmed_pending() -> Condition:
    return Condition(
        PROGRAMMED, "Unknown", LISTENER_PROGRAMMED_PENDING, "Waiting for the data plane"
    )


def listener_no_conflicts() -> Condition:
    return Condition(CONFLICTED, "False", LISTENER_CONFLICTED_NO_CONFLICTS, "No conflicts")


def listener_conflicted(reason: str, message: str) -> Condition:
    return Condition(CONFLICTED, "True", reason, message)


# --- Route parents ---------------------------------------------------------------------


def route_accepted() -> Condition:
    return _ROUTE_ACCEPTED


def route_accepted_except(message: str) -> Condition:
    """Accepted on some listeners of the parent; `message` says which it did not get."""
    return Condition(ACCEPTED, "True", ROUTE_ACCEPTED_ACCEPTED, f"Route is accepted; {message}")


def route_not_allowed_by_listeners(message: str) -> Condition:
    return Condition(ACCEPTED, "False", ROUTE_ACCEPTED_NOT_ALLOWED_BY_LISTENERS, message)


def route_no_matching_listener_hostname(message: str) -> Condition:
    return Condition(ACCEPTED, "False", ROUTE_ACCEPTED_NO_MATCHING_LISTENER_HOSTNAME, message)


def route_no_matching_parent(message: str) -> Condition:
    return Condition(ACCEPTED, "False", ROUTE_ACCEPTED_NO_MATCHING_PARENT, message)


def route_unsupported_value(message: str) -> Condition:
    return Condition(ACCEPTED, "False", ROUTE_ACCEPTED_UNSUPPORTED_VALUE, message)


def route_resolved_refs() -> Condition:
    return _ROUTE_RESOLVED_REFS


def route_unresolved_refs(reason: str, message: str) -> Condition:
    """ResolvedRefs=False; reason is one of the ROUTE_RESOLVED_REFS_* constants."""
    return Condition(RESOLVED_REFS, "False", reason, message)


def route_partially_invalid(message: str) -> Condition:
    return Condition(PARTIALLY_INVALID, "True", ROUTE_PARTIALLY_INVALID_UNSUPPORTED_VALUE, message)


# --- Gateway and listener TLS (GEP-91 frontend validation, GEP-3155 backend certs) -----

GATEWAY_RESOLVED_REFS_RESOLVED = "ResolvedRefs"
GATEWAY_RESOLVED_REFS_INVALID_CLIENT_CERTIFICATE_REF = "InvalidClientCertificateRef"
GATEWAY_RESOLVED_REFS_REF_NOT_PERMITTED = "RefNotPermitted"
GATEWAY_RESOLVED_REFS_LISTENERS_NOT_RESOLVED = "ListenersNotResolved"
INSECURE_FRONTEND_VALIDATION_MODE = "InsecureFrontendValidationMode"
GATEWAY_INSECURE_FRONTEND_CONFIGURATION_CHANGED = "ConfigurationChanged"
LISTENER_ACCEPTED_NO_VALID_CA_CERTIFICATE = "NoValidCACertificate"
LISTENER_RESOLVED_REFS_INVALID_CA_CERTIFICATE_REF = "InvalidCACertificateRef"
LISTENER_RESOLVED_REFS_INVALID_CA_CERTIFICATE_KIND = "InvalidCACertificateKind"


def gateway_resolved_refs() -> Condition:
    return Condition(
        RESOLVED_REFS, "True", GATEWAY_RESOLVED_REFS_RESOLVED, "All references are resolved"
    )


def gateway_unresolved_refs(reason: str, message: str) -> Condition:
    """ResolvedRefs=False; reason is one of the GATEWAY_RESOLVED_REFS_* constants."""
    return Condition(RESOLVED_REFS, "False", reason, message)


def gateway_insecure_frontend_validation(message: str) -> Condition:
    return Condition(
        INSECURE_FRONTEND_VALIDATION_MODE,
        "True",
        GATEWAY_INSECURE_FRONTEND_CONFIGURATION_CHANGED,
        message,
    )


def listener_no_valid_ca_certificate(message: str) -> Condition:
    return Condition(ACCEPTED, "False", LISTENER_ACCEPTED_NO_VALID_CA_CERTIFICATE, message)


# --- BackendTLSPolicy ancestors (apis/v1 policy_types.go, backendtlspolicy_types.go) ----

POLICY_ACCEPTED_ACCEPTED = "Accepted"
POLICY_ACCEPTED_CONFLICTED = "Conflicted"
POLICY_ACCEPTED_INVALID = "Invalid"
POLICY_ACCEPTED_NO_VALID_CA_CERTIFICATE = "NoValidCACertificate"
POLICY_RESOLVED_REFS_RESOLVED = "ResolvedRefs"
POLICY_RESOLVED_REFS_INVALID_CA_CERTIFICATE_REF = "InvalidCACertificateRef"
POLICY_RESOLVED_REFS_INVALID_KIND = "InvalidKind"
# Not a reason the spec lists for routes (it lists none for this case): a backendRef is
# invalid when "a BackendTLSPolicy is present that refers to the Service, and the
# implementation is unable to meet the requirement" (HTTPBackendRef.BackendRef).
ROUTE_RESOLVED_REFS_INVALID_BACKEND_TLS_POLICY = "InvalidBackendTLSPolicy"


def policy_accepted() -> Condition:
    return Condition(ACCEPTED, "True", POLICY_ACCEPTED_ACCEPTED, "Policy is accepted")


def policy_not_accepted(reason: str, message: str) -> Condition:
    """Accepted=False; reason is one of the POLICY_ACCEPTED_* constants."""
    return Condition(ACCEPTED, "False", reason, message)


def policy_resolved_refs() -> Condition:
    return Condition(
        RESOLVED_REFS, "True", POLICY_RESOLVED_REFS_RESOLVED, "All references are resolved"
    )


def policy_unresolved_refs(reason: str, message: str) -> Condition:
    """ResolvedRefs=False; reason is one of the POLICY_RESOLVED_REFS_* constants."""
    return Condition(RESOLVED_REFS, "False", reason, message)


# --- ListenerSet (apis/v1/listenerset_types.go) ----------------------------------------

LISTENER_SET_ACCEPTED_ACCEPTED = "Accepted"
LISTENER_SET_ACCEPTED_NOT_ALLOWED = "NotAllowed"
LISTENER_SET_ACCEPTED_PARENT_NOT_ACCEPTED = "ParentNotAccepted"
LISTENER_SET_ACCEPTED_LISTENERS_NOT_VALID = "ListenersNotValid"
LISTENER_SET_PROGRAMMED_PROGRAMMED = "Programmed"
LISTENER_SET_PROGRAMMED_NOT_ALLOWED = "NotAllowed"
LISTENER_SET_PROGRAMMED_PARENT_NOT_ACCEPTED = "ParentNotAccepted"
LISTENER_SET_PROGRAMMED_LISTENERS_NOT_VALID = "ListenersNotValid"
LISTENER_SET_PROGRAMMED_PARENT_NOT_PROGRAMMED = "ParentNotProgrammed"
LISTENER_SET_PROGRAMMED_PENDING = "Pending"


def listener_set_accepted() -> Condition:
    return Condition(ACCEPTED, "True", LISTENER_SET_ACCEPTED_ACCEPTED, "ListenerSet is accepted")


def listener_set_accepted_listeners_not_valid(message: str) -> Condition:
    """Accepted=True although some listener entries are not valid."""
    return Condition(ACCEPTED, "True", LISTENER_SET_ACCEPTED_LISTENERS_NOT_VALID, message)


def listener_set_not_accepted(reason: str, message: str) -> Condition:
    """Accepted=False; reason is one of the LISTENER_SET_ACCEPTED_* constants."""
    return Condition(ACCEPTED, "False", reason, message)


def listener_set_programmed() -> Condition:
    return Condition(
        PROGRAMMED, "True", LISTENER_SET_PROGRAMMED_PROGRAMMED, "ListenerSet is serving traffic"
    )


def listener_set_not_programmed(reason: str, message: str) -> Condition:
    """Programmed=False; reason is one of the LISTENER_SET_PROGRAMMED_* constants."""
    return Condition(PROGRAMMED, "False", reason, message)


def listener_set_programmed_pending() -> Condition:
    return Condition(
        PROGRAMMED, "Unknown", LISTENER_SET_PROGRAMMED_PENDING, "Waiting for the data plane"
    )


def listener_not_programmed_conflicted(reason: str, message: str) -> Condition:
    """Programmed=False for a conflicted listener, with the conflict's reason."""
    return Condition(PROGRAMMED, "False", reason, message)
