"""Listener TLS: certificateRefs resolved to key pairs the data plane can serve.

Part of the graph (Snapshot -> **graph** -> status, IR). Follows apis/v1 ListenerTLSConfig
and GEP-709: a certificateRef names a core Secret (group "", kind Secret) of type
``kubernetes.io/tls``; one in another namespace needs a ReferenceGrant there, from
Gateways of the listener's namespace to that Secret (or to all Secrets). A reference
that is not permitted is reported as ``RefNotPermitted`` whatever it points at, so a
Gateway cannot probe other namespaces; a permitted but unusable one (missing, wrong
kind, malformed PEM, key not matching the certificate) is ``InvalidCertificateRef``.

Certificates are parsed here, once per Snapshot, with ``cryptography``; the data plane
receives only pairs that loaded. No clock is read: an expired certificate is still
served (clients judge validity; the graph stays a pure function of its input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from turnout.graph import hostnames
from turnout.resources import Secret
from turnout.resources.gateway import FrontendTLSValidation, Gateway, Listener
from turnout.resources.meta import ObjectReference, SecretObjectReference
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c

if TYPE_CHECKING:
    from cryptography import x509

# cryptography is imported where certificates are parsed, not with this module: it is
# the largest import of the control plane (about 45 ms) and most configurations have no
# TLS listener; `turnout run` starts faster without it.

GATEWAY_GROUP = "gateway.networking.k8s.io"
TLS_SECRET_TYPE = "kubernetes.io/tls"


@dataclass(frozen=True)
class ListenerCertificate:
    """One usable certificateRef of a listener."""

    secret: tuple[str, str]  # (namespace, name)
    cert_chain_pem: str
    private_key_pem: str
    # DNS names this certificate serves on the listener: its SANs (or CN when it has
    # no SAN extension) narrowed to the listener hostname; lower-case.
    hostnames: tuple[str, ...]


@dataclass(frozen=True)
class CertificateRefProblem:
    """Why one certificateRef is not usable: a ResolvedRefs=False reason and message."""

    reason: str  # c.LISTENER_RESOLVED_REFS_INVALID_CERTIFICATE_REF or ..._REF_NOT_PERMITTED
    message: str


REF_NOT_PERMITTED = c.LISTENER_RESOLVED_REFS_REF_NOT_PERMITTED
INVALID_CERTIFICATE_REF = c.LISTENER_RESOLVED_REFS_INVALID_CERTIFICATE_REF


def resolve_certificate_refs(
    snapshot: Snapshot,
    gateway_namespace: str,
    listener: Listener,
    path: str,
    *,
    from_kind: str = "Gateway",
) -> tuple[list[ListenerCertificate], list[CertificateRefProblem]]:
    """The usable certificates of an HTTPS listener, and a problem per unusable ref.

    ``path`` is the listener's field path (``spec.listeners[2]``) for messages.
    """
    tls = listener.tls
    if tls is None or not tls.certificate_refs:
        return [], [
            CertificateRefProblem(
                INVALID_CERTIFICATE_REF,
                f"{path}.tls.certificateRefs: turnout needs at least one certificate "
                "to terminate TLS",
            )
        ]
    certificates: list[ListenerCertificate] = []
    problems: list[CertificateRefProblem] = []
    for i, ref in enumerate(tls.certificate_refs):
        result = _resolve(
            snapshot,
            gateway_namespace,
            listener.hostname,
            ref,
            f"{path}.tls.certificateRefs[{i}]",
            from_kind,
        )
        if isinstance(result, CertificateRefProblem):
            problems.append(result)
        else:
            certificates.append(result)
    return certificates, problems


def resolve_secret_key_pair(
    snapshot: Snapshot, gateway_namespace: str, ref: SecretObjectReference, field: str
) -> ListenerCertificate | CertificateRefProblem:
    """A key pair a Gateway presents as a client (``tls.backend.clientCertificateRef``),
    with the same rules and reasons as a listener certificateRef."""
    return _resolve(snapshot, gateway_namespace, None, ref, field, "Gateway")


def _resolve(
    snapshot: Snapshot,
    gateway_namespace: str,
    listener_hostname: str | None,
    ref: SecretObjectReference,
    field: str,
    from_kind: str,
) -> ListenerCertificate | CertificateRefProblem:
    namespace = ref.namespace or gateway_namespace
    shown = f"{namespace}/{ref.name}"
    if namespace != gateway_namespace and not _grant_allows(
        snapshot, gateway_namespace, ref, from_kind
    ):
        return CertificateRefProblem(
            REF_NOT_PERMITTED,
            f"{field}: no ReferenceGrant in namespace {namespace} allows {from_kind}s of "
            f"namespace {gateway_namespace} to use {_kind(ref)} {ref.name}",
        )
    if ref.group != "" or ref.kind != "Secret":
        return CertificateRefProblem(
            INVALID_CERTIFICATE_REF,
            f"{field}: {_kind(ref)} is not supported; certificateRefs must name core Secrets",
        )
    secret = snapshot.secrets.get((namespace, ref.name))
    if secret is None:
        return CertificateRefProblem(INVALID_CERTIFICATE_REF, f"{field}: Secret {shown} not found")
    if secret.type != TLS_SECRET_TYPE:
        return CertificateRefProblem(
            INVALID_CERTIFICATE_REF,
            f"{field}: Secret {shown} is of type {secret.type}, not {TLS_SECRET_TYPE}",
        )
    loaded = _load_key_pair(secret)
    if isinstance(loaded, str):
        return CertificateRefProblem(INVALID_CERTIFICATE_REF, f"{field}: Secret {shown}: {loaded}")
    chain_pem, key_pem, names = loaded
    served = _served_hostnames(listener_hostname, names)
    return ListenerCertificate((namespace, ref.name), chain_pem, key_pem, served)


def _kind(ref: SecretObjectReference | ObjectReference) -> str:
    return f"{ref.group}/{ref.kind}" if ref.group else ref.kind


def _grant_allows(
    snapshot: Snapshot,
    gateway_namespace: str,
    ref: SecretObjectReference | ObjectReference,
    from_kind: str,
) -> bool:
    target_namespace = ref.namespace
    for (namespace, _), grant in sorted(snapshot.reference_grants.items()):
        if namespace != target_namespace:
            continue
        if not any(
            f.group == GATEWAY_GROUP and f.kind == from_kind and f.namespace == gateway_namespace
            for f in grant.spec.from_
        ):
            continue
        if any(
            t.group == ref.group and t.kind == ref.kind and t.name in (None, ref.name)
            for t in grant.spec.to
        ):
            return True
    return False


def _load_key_pair(secret: Secret) -> tuple[str, str, list[str]] | str:
    """(chain PEM, key PEM, DNS names) or why the pair cannot be served."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    # Keys that can sign a TLS handshake (DH and X25519/X448 keys only agree on secrets).
    signing_keys = (
        rsa.RSAPrivateKey,
        ec.EllipticCurvePrivateKey,
        ed25519.Ed25519PrivateKey,
        ed448.Ed448PrivateKey,
    )
    chain = secret.get_bytes("tls.crt")
    key = secret.get_bytes("tls.key")
    if not chain or not key:
        return "tls.crt and tls.key must both be set"
    try:
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError:
        return "tls.crt is not a PEM-encoded X.509 certificate"
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        return "tls.key is not an unencrypted PEM-encoded private key"
    except UnsupportedAlgorithm:
        return "tls.key uses an unsupported key algorithm"
    if not isinstance(private_key, signing_keys):
        return "tls.key cannot sign TLS handshakes"
    leaf = certs[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if leaf.public_key().public_bytes(der, public) != private_key.public_key().public_bytes(
        der, public
    ):
        return "tls.key does not match the certificate in tls.crt"
    try:
        return chain.decode("ascii"), key.decode("ascii"), _dns_names(leaf)
    except UnicodeDecodeError:
        return "tls.crt or tls.key is not ASCII PEM text"


def _dns_names(cert: x509.Certificate) -> list[str]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        # No SAN extension: clients fall back to the subject CN (RFC 6125 6.4.4).
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(attr.value).lower() for attr in common[:1]]
    return [name.lower() for name in san.value.get_values_for_type(x509.DNSName)]


def _served_hostnames(listener_hostname: str | None, names: list[str]) -> tuple[str, ...]:
    served: list[str] = []
    for name in names:
        common = hostnames.intersect(listener_hostname, name)
        if common is not None and common not in served:
            served.append(common)
    return tuple(served)


# --- CA bundles (BackendTLSPolicy and frontend client validation) -----------------------

CA_KEY = "ca.crt"


@dataclass(frozen=True)
class CABundleProblem:
    """Why a caCertificateRef gives no trust anchors."""

    unsupported_kind: bool  # InvalidKind / InvalidCACertificateKind rather than ...Ref
    message: str


def load_ca_bundle(
    snapshot: Snapshot, namespace: str, group: str, kind: str, name: str, field: str
) -> str | CABundleProblem:
    """The PEM certificates of a ConfigMap (Core) or Secret (implementation-specific)
    under key ``ca.crt``, re-encoded so the data plane gets clean PEM, or the problem."""
    shown = f"{namespace}/{name}"
    if group != "" or kind not in ("ConfigMap", "Secret"):
        what = f"{group}/{kind}" if group else kind
        return CABundleProblem(
            True, f"{field}: kind {what} is not supported; use a core ConfigMap or Secret"
        )
    data: bytes | None
    if kind == "ConfigMap":
        config_map = snapshot.config_maps.get((namespace, name))
        if config_map is None:
            return CABundleProblem(False, f"{field}: ConfigMap {shown} not found")
        text = config_map.data.get(CA_KEY)
        data = text.encode() if text is not None else None
    else:
        secret = snapshot.secrets.get((namespace, name))
        if secret is None:
            return CABundleProblem(False, f"{field}: Secret {shown} not found")
        data = secret.get_bytes(CA_KEY)
    if not data or not data.strip():
        return CABundleProblem(False, f"{field}: {kind} {shown} has no {CA_KEY} data")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return CABundleProblem(
            False, f"{field}: {kind} {shown}: {CA_KEY} is not PEM-encoded X.509 certificates"
        )
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in certs)


# --- frontend client certificate validation (GEP-91) ------------------------------------


@dataclass(frozen=True)
class ClientValidation:
    """What an HTTPS listener asks of client certificates."""

    ca_pem: str  # trust anchors of the refs that resolved
    mode: str  # "AllowValidOnly" or "AllowInsecureFallback"


def frontend_validation(gateway: Gateway, port: int) -> tuple[FrontendTLSValidation | None, str]:
    """The validation settings for HTTPS listeners on ``port`` and their field path:
    a ``perPort`` entry for the port overrides ``default``."""
    frontend = gateway.spec.tls.frontend if gateway.spec.tls is not None else None
    if frontend is None:
        return None, ""
    for i, per_port in enumerate(frontend.per_port):
        if per_port.port == port:
            return per_port.tls.validation, f"spec.tls.frontend.perPort[{i}].tls.validation"
    return frontend.default.validation, "spec.tls.frontend.default.validation"


def resolve_client_validation(
    snapshot: Snapshot, gateway_namespace: str, validation: FrontendTLSValidation, path: str
) -> tuple[ClientValidation | None, list[CertificateRefProblem]]:
    """The trust anchors of ``validation.caCertificateRefs`` (None when none resolved)
    and a problem per unusable ref, with the listener reasons of FrontendTLSValidation."""
    pems: list[str] = []
    problems: list[CertificateRefProblem] = []
    for i, ref in enumerate(validation.ca_certificate_refs):
        field = f"{path}.caCertificateRefs[{i}]"
        namespace = ref.namespace or gateway_namespace
        if namespace != gateway_namespace and not _grant_allows(
            snapshot, gateway_namespace, ref, "Gateway"
        ):
            problems.append(
                CertificateRefProblem(
                    REF_NOT_PERMITTED,
                    f"{field}: no ReferenceGrant in namespace {namespace} allows Gateways of "
                    f"namespace {gateway_namespace} to use {_kind(ref)} {ref.name}",
                )
            )
            continue
        loaded = load_ca_bundle(snapshot, namespace, ref.group, ref.kind, ref.name, field)
        if isinstance(loaded, CABundleProblem):
            reason = (
                c.LISTENER_RESOLVED_REFS_INVALID_CA_CERTIFICATE_KIND
                if loaded.unsupported_kind
                else c.LISTENER_RESOLVED_REFS_INVALID_CA_CERTIFICATE_REF
            )
            problems.append(CertificateRefProblem(reason, loaded.message))
        else:
            pems.append(loaded)
    if not pems:
        return None, problems
    return ClientValidation("".join(pems), validation.mode), problems
