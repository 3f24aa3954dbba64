"""The CRDs' CEL rules and the API server's cross-field checks, with field paths.

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph):
``parse_object`` calls :func:`validate_resource` on every model that passed the schema
(types, patterns, ranges), so it only checks what relates several fields. This module
holds the entry point and the rules of Gateway and ListenerSet (listener
protocol/TLS/hostname combinations, uniqueness, addresses, label selectors),
BackendTLSPolicy and the core kinds; the route kinds' rules (parentRef distinctness,
filters, ReplacePrefixMatch, path values, timeouts) are in
:mod:`turnout.resources.routevalidation`. Rules come from the
``+kubebuilder:validation:XValidation`` markers in ``apis/v1/*.go`` (experimental channel
where it is a superset, e.g. parentRef ports and rule names); each check names its rule
in words rather than quoting the CEL.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterator, Sequence

from turnout.resources import routevalidation as routes
from turnout.resources.backendtlspolicy import BackendTLSPolicy
from turnout.resources.core import EndpointSlice, Secret, Service
from turnout.resources.fields import HOSTNAME_RE, is_ip_address
from turnout.resources.gateway import Gateway, GatewaySpecAddress, Listener
from turnout.resources.grpcroute import GRPCRoute
from turnout.resources.httproute import HTTPRoute
from turnout.resources.listenerset import ListenerSet
from turnout.resources.meta import LabelSelector
from turnout.resources.parse import FieldError, Resource
from turnout.resources.tcproute import TCPRoute
from turnout.resources.tlsroute import TLSRoute
from turnout.resources.udproute import UDPRoute

Errors = Iterator[FieldError]


def validate_resource(obj: Resource) -> list[FieldError]:
    """All cross-field problems of ``obj`` (empty when valid)."""
    if isinstance(obj, Gateway):
        return list(_gateway(obj))
    if isinstance(obj, HTTPRoute):
        return list(routes.http_route(obj))
    if isinstance(obj, GRPCRoute):
        return list(routes.grpc_route(obj))
    if isinstance(obj, BackendTLSPolicy):
        return list(_backend_tls_policy(obj))
    if isinstance(obj, ListenerSet):
        return list(_listeners(obj.spec.listeners))
    if isinstance(obj, TCPRoute | TLSRoute | UDPRoute):
        return list(routes.l4_route(obj))
    if isinstance(obj, Service):
        return list(_service(obj))
    if isinstance(obj, Secret):
        return list(_secret(obj))
    if isinstance(obj, EndpointSlice):
        return list(_endpoint_slice(obj))
    return []


# --- Gateway --------------------------------------------------------------------------

_NO_TLS_PROTOCOLS = ("HTTP", "TCP", "UDP")
_TLS_PROTOCOLS = ("HTTPS", "TLS")


def _gateway(gw: Gateway) -> Errors:
    yield from _listeners(gw.spec.listeners)
    yield from _addresses(gw.spec.addresses)
    frontend = gw.spec.tls.frontend if gw.spec.tls is not None else None
    if frontend is not None:
        ports = Counter(config.port for config in frontend.per_port)
        for i, config in enumerate(frontend.per_port):
            if ports[config.port] > 1:
                yield FieldError(
                    f"spec.tls.frontend.perPort[{i}].port",
                    "Port for TLS configuration must be unique within the Gateway",
                )
    allowed = gw.spec.allowed_listeners
    if allowed is not None and allowed.namespaces.selector is not None:
        yield from _label_selector(
            allowed.namespaces.selector, "spec.allowedListeners.namespaces.selector"
        )


def _listeners(listeners: Sequence[Listener]) -> Errors:
    """The rules shared by Gateway.spec.listeners and ListenerSet.spec.listeners."""
    names: set[str] = set()
    combos: set[tuple[int, str, str | None]] = set()
    for i, listener in enumerate(listeners):
        path = f"spec.listeners[{i}]"
        yield from _listener(listener, path)
        if listener.name in names:
            yield FieldError(f"{path}.name", f"duplicate listener name {listener.name!r}")
        names.add(listener.name)
        combo = (listener.port, listener.protocol, listener.hostname)
        if combo in combos:
            yield FieldError(
                path, "another listener has the same combination of port, protocol and hostname"
            )
        combos.add(combo)


def _listener(listener: Listener, path: str) -> Errors:
    protocol, tls = listener.protocol, listener.tls
    if protocol in _NO_TLS_PROTOCOLS and tls is not None:
        yield FieldError(f"{path}.tls", f"must not be set for protocol {protocol}")
    if protocol in _TLS_PROTOCOLS and tls is None:
        yield FieldError(f"{path}.tls", f"required for protocol {protocol}")
    if protocol == "HTTPS" and tls is not None and tls.mode != "Terminate":
        yield FieldError(f"{path}.tls.mode", "must be Terminate for protocol HTTPS")
    if protocol in ("TCP", "UDP") and listener.hostname:
        yield FieldError(f"{path}.hostname", f"must not be set for protocol {protocol}")
    if tls is not None and tls.mode == "Terminate" and not tls.certificate_refs and not tls.options:
        yield FieldError(
            f"{path}.tls.certificateRefs",
            "at least one certificateRef is required when mode is Terminate (unless options are set)",
        )
    selector = listener.allowed_routes.namespaces.selector
    if selector is not None:
        yield from _label_selector(selector, f"{path}.allowedRoutes.namespaces.selector")


def _addresses(addresses: Sequence[GatewaySpecAddress]) -> Errors:
    seen: set[tuple[str, str]] = set()
    for i, address in enumerate(addresses):
        path = f"spec.addresses[{i}].value"
        value = address.value
        if value is None:
            continue
        if address.type == "IPAddress" and not is_ip_address(value):
            yield FieldError(path, f"{value!r} is not a valid IPv4 or IPv6 address")
        if address.type == "Hostname" and not HOSTNAME_RE.match(value):
            yield FieldError(path, f"{value!r} is not a valid hostname")
        if address.type in ("IPAddress", "Hostname"):
            if (address.type, value) in seen:
                yield FieldError(path, f"duplicate {address.type} value {value!r}")
            seen.add((address.type, value))


def _label_selector(selector: LabelSelector, path: str) -> Errors:
    for i, req in enumerate(selector.match_expressions):
        if req.operator in ("In", "NotIn") and not req.values:
            yield FieldError(
                f"{path}.matchExpressions[{i}].values",
                f"must not be empty when operator is {req.operator}",
            )
        if req.operator in ("Exists", "DoesNotExist") and req.values:
            yield FieldError(
                f"{path}.matchExpressions[{i}].values",
                f"must be empty when operator is {req.operator}",
            )


# --- core kinds -----------------------------------------------------------------------


def _service(svc: Service) -> Errors:
    ports = svc.spec.ports
    names: set[str] = set()
    port_protocols: set[tuple[int, str]] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        if port.name is None and len(ports) > 1:
            yield FieldError(f"{path}.name", "required when the Service has more than one port")
        if port.name is not None:
            if port.name in names:
                yield FieldError(f"{path}.name", f"duplicate port name {port.name!r}")
            names.add(port.name)
        if (port.port, port.protocol) in port_protocols:
            yield FieldError(path, f"duplicate port {port.port}/{port.protocol}")
        port_protocols.add((port.port, port.protocol))


def _secret(secret: Secret) -> Errors:
    if secret.type == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in secret.data and key not in secret.string_data:
                yield FieldError(f"data[{key}]", "required for Secrets of type kubernetes.io/tls")


def _endpoint_slice(eps: EndpointSlice) -> Errors:
    if eps.address_type == "FQDN":
        return
    version = 4 if eps.address_type == "IPv4" else 6
    for i, endpoint in enumerate(eps.endpoints):
        for j, address in enumerate(endpoint.addresses):
            try:
                ok = ipaddress.ip_address(address).version == version
            except ValueError:
                ok = False
            if not ok:
                yield FieldError(
                    f"endpoints[{i}].addresses[{j}]",
                    f"{address!r} is not a valid {eps.address_type} address",
                )


# --- BackendTLSPolicy -------------------------------------------------------------------


def _backend_tls_policy(policy: BackendTLSPolicy) -> Errors:
    validation = policy.spec.validation
    path = "spec.validation"
    if validation.ca_certificate_refs and validation.well_known_ca_certificates:
        yield FieldError(
            path, "must not contain both CACertificateRefs and WellKnownCACertificates"
        )
    if not validation.ca_certificate_refs and not validation.well_known_ca_certificates:
        yield FieldError(path, "must specify either CACertificateRefs or WellKnownCACertificates")
    for i, san in enumerate(validation.subject_alt_names):
        san_path = f"{path}.subjectAltNames[{i}]"
        if san.type == "Hostname" and not san.hostname:
            yield FieldError(
                san_path, "SubjectAltName element must contain Hostname, if Type is set to Hostname"
            )
        if san.type != "Hostname" and san.hostname:
            yield FieldError(
                san_path,
                "SubjectAltName element must not contain Hostname, if Type is not set to Hostname",
            )
        if san.type == "URI" and not san.uri:
            yield FieldError(
                san_path, "SubjectAltName element must contain URI, if Type is set to URI"
            )
        if san.type != "URI" and san.uri:
            yield FieldError(
                san_path, "SubjectAltName element must not contain URI, if Type is not set to URI"
            )
        if san.type == "URI" and san.uri and not _ABSOLUTE_URI_RE.match(san.uri):
            yield FieldError(
                f"{san_path}.uri", "must be an absolute URI (scheme:scheme-specific-part)"
            )
    # targetRefs: the same target twice needs distinct, non-empty sectionNames.
    seen: Counter[tuple[str, str, str, str]] = Counter()
    for ref in policy.spec.target_refs:
        seen[(ref.group, ref.kind, ref.name, ref.section_name or "")] += 1
    targets = Counter((ref.group, ref.kind, ref.name) for ref in policy.spec.target_refs)
    for i, ref in enumerate(policy.spec.target_refs):
        key = (ref.group, ref.kind, ref.name)
        if targets[key] > 1 and not ref.section_name:
            yield FieldError(
                f"spec.targetRefs[{i}]",
                "sectionName must be specified when targetRefs includes 2 or more references "
                "to the same target",
            )
        elif seen[(*key, ref.section_name or "")] > 1:
            yield FieldError(
                f"spec.targetRefs[{i}]",
                "sectionName must be unique when targetRefs includes 2 or more references "
                "to the same target",
            )


# AbsoluteURI in the CRD: a scheme, ":", and something after it.
_ABSOLUTE_URI_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")
