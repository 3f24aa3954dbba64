"""Gateway ``spec.tls``: client certificate validation on HTTPS listeners (frontend,
GEP-91) and the client certificate the Gateway presents to TLS backends (GEP-3155).

Part of the graph (Snapshot -> **graph** -> status, IR), called by
``turnout.graph.gateways`` for each Gateway. Follows ``apis/v1/gateway_types.go``:

* ``tls.frontend.default.validation`` applies to every HTTPS listener; a
  ``perPort`` entry overrides it for the HTTPS listeners on its port. Each unusable
  ``caCertificateRef`` makes the listener ``ResolvedRefs=False``
  (``InvalidCACertificateRef``, ``InvalidCACertificateKind`` or ``RefNotPermitted``);
  when none is usable the listener is ``Accepted=False/NoValidCACertificate`` and not
  served. Listeners of other protocols are unaffected.
* ``mode: AllowInsecureFallback`` (anywhere) gives the Gateway
  ``InsecureFrontendValidationMode=True/ConfigurationChanged``.
* ``tls.backend.clientCertificateRef`` names a ``kubernetes.io/tls`` Secret (another
  namespace needs a ReferenceGrant); a problem makes the Gateway
  ``ResolvedRefs=False`` (``InvalidClientCertificateRef`` or ``RefNotPermitted``) and the
  Gateway connects to TLS backends without a client certificate.

The Gateway's (experimental) ``ResolvedRefs`` condition is written when ``spec.tls`` is
set: it covers the backend client certificate and summarises the listeners'
(``ListenersNotResolved``).
"""

from __future__ import annotations

from turnout.graph import tls
from turnout.graph.model import GatewayNode, ListenerNode
from turnout.graph.tls import ListenerCertificate
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c
from turnout.status.conditions import Condition

INSECURE_FALLBACK = "AllowInsecureFallback"


def client_validation_problems(node: ListenerNode, snapshot: Snapshot) -> list[tuple[str, str]]:
    """Resolve the frontend validation of an HTTPS listener into ``node``; returns the
    (ResolvedRefs reason, message) of each unusable CA ref."""
    validation, path = tls.frontend_validation(node.gateway.obj, node.spec.port)
    if validation is None:
        return []
    node.client_validation, problems = tls.resolve_client_validation(
        snapshot, node.gateway.namespace, validation, path
    )
    if node.client_validation is None:
        node.accepted = False
        node.conditions.insert(
            0,
            c.listener_no_valid_ca_certificate(
                f"{path}.caCertificateRefs: none is usable, so client certificates "
                "cannot be validated (see ResolvedRefs)"
            ),
        )
    return [(problem.reason, problem.message) for problem in problems]


def gateway_tls_conditions(node: GatewayNode, snapshot: Snapshot) -> list[Condition]:
    """ResolvedRefs and InsecureFrontendValidationMode of a Gateway with ``spec.tls``;
    also resolves the backend client certificate into ``node``."""
    spec_tls = node.obj.spec.tls
    if spec_tls is None:
        return []
    problems: list[tuple[str, str]] = []
    if spec_tls.backend is not None and spec_tls.backend.client_certificate_ref is not None:
        loaded = _client_certificate(node, snapshot)
        if isinstance(loaded, ListenerCertificate):
            node.backend_client_certificate = loaded
        else:
            problems.append(loaded)
    unresolved = [
        ln.name
        for ln in node.listeners
        if any(cond.type == c.RESOLVED_REFS and cond.status == "False" for cond in ln.conditions)
    ]
    if unresolved:
        problems.append(
            (
                c.GATEWAY_RESOLVED_REFS_LISTENERS_NOT_RESOLVED,
                f"listeners with unresolved references: {', '.join(unresolved)}",
            )
        )
    conditions = [
        c.gateway_unresolved_refs(problems[0][0], "; ".join(m for _, m in problems))
        if problems
        else c.gateway_resolved_refs()
    ]
    insecure = _insecure_fallback_fields(node)
    if insecure:
        conditions.append(
            c.gateway_insecure_frontend_validation(
                f"{', '.join(insecure)}: mode {INSECURE_FALLBACK} accepts connections "
                "without a valid client certificate"
            )
        )
    return conditions


def _insecure_fallback_fields(node: GatewayNode) -> list[str]:
    frontend = node.obj.spec.tls.frontend if node.obj.spec.tls is not None else None
    if frontend is None:
        return []
    fields = []
    default = frontend.default.validation
    if default is not None and default.mode == INSECURE_FALLBACK:
        fields.append("spec.tls.frontend.default.validation.mode")
    for i, per_port in enumerate(frontend.per_port):
        validation = per_port.tls.validation
        if validation is not None and validation.mode == INSECURE_FALLBACK:
            fields.append(f"spec.tls.frontend.perPort[{i}].tls.validation.mode")
    return fields


def _client_certificate(
    node: GatewayNode, snapshot: Snapshot
) -> ListenerCertificate | tuple[str, str]:
    """The backend client key pair, or (ResolvedRefs reason, message)."""
    assert node.obj.spec.tls is not None and node.obj.spec.tls.backend is not None
    ref = node.obj.spec.tls.backend.client_certificate_ref
    assert ref is not None
    field = "spec.tls.backend.clientCertificateRef"
    resolved = tls.resolve_secret_key_pair(snapshot, node.namespace, ref, field)
    if isinstance(resolved, tls.CertificateRefProblem):
        reason = (
            c.GATEWAY_RESOLVED_REFS_REF_NOT_PERMITTED
            if resolved.reason == tls.REF_NOT_PERMITTED
            else c.GATEWAY_RESOLVED_REFS_INVALID_CLIENT_CERTIFICATE_REF
        )
        return reason, resolved.message
    return resolved
