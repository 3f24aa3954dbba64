"""The IR: what the data plane must do, and nothing about how it was derived.

The IR is the contract between the control plane and the data plane. It is made of
frozen msgspec Structs so that a whole configuration can be encoded (msgpack or JSON)
and sent over a pipe to worker processes or remote proxies, and decoded again with
validation, in a few milliseconds even at thousands of routes.

Shape::

    Config
      gateways[]: Gateway (name "ns/name", address)
        listeners[]: Listener (name "ns/gw/listener", address, port, protocol, hostname)
          virtual_hosts[]: VirtualHost (hostname: exact, "*.suffix" or "*")
            routes[]: HTTPRouteRule, already sorted by Gateway API precedence
        (TLS) sni_routes[]: SNIRoute (SNI hostname -> L4Route: weighted backends)
        (TCP, UDP) l4_route: L4Route
      clusters{name: Cluster}: endpoints of one Service port, shared by every route

Hostname semantics are resolved by the control plane: every VirtualHost of a listener
already holds the complete, precedence-ordered list of rules a request for that host
may match (exact-hostname routes first, then matching wildcards, then routes without a
hostname). The data plane only has to pick the most specific VirtualHost (exact, then
the longest matching wildcard, then "*") and the first matching rule in it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

# --- matches ---------------------------------------------------------------------------

PathMatchType = Literal["Exact", "PathPrefix", "RegularExpression"]
StringMatchType = Literal["Exact", "RegularExpression"]


class PathMatch(msgspec.Struct, frozen=True, omit_defaults=True):
    type: PathMatchType
    # For PathPrefix the value is normalised: no trailing "/" except for the root "/".
    value: str


class HeaderMatch(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str  # lower-case
    type: StringMatchType
    value: str


class QueryParamMatch(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str  # case-sensitive
    type: StringMatchType
    value: str


class RouteMatch(msgspec.Struct, frozen=True, omit_defaults=True):
    path: PathMatch
    headers: tuple[HeaderMatch, ...] = ()
    query_params: tuple[QueryParamMatch, ...] = ()
    method: str | None = None


# --- filters ---------------------------------------------------------------------------


class HeaderModifier(msgspec.Struct, frozen=True, omit_defaults=True):
    """set/add/remove on request or response headers. Names are lower-case."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


class PathModifier(msgspec.Struct, frozen=True, omit_defaults=True):
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    value: str
    # For ReplacePrefixMatch: the (normalised) PathPrefix value of the match that selected
    # the rule; the data plane replaces that prefix of the request path.
    prefix: str = "/"


class RequestRedirect(msgspec.Struct, frozen=True, omit_defaults=True):
    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    path: PathModifier | None = None
    status_code: int = 302


class URLRewrite(msgspec.Struct, frozen=True, omit_defaults=True):
    hostname: str | None = None
    path: PathModifier | None = None


class RequestMirror(msgspec.Struct, frozen=True, omit_defaults=True):
    cluster: str  # name in Config.clusters
    numerator: int = 100
    denominator: int = 100


class OriginPattern(msgspec.Struct, frozen=True):
    """A wildcard allowOrigins entry: ``scheme://*.suffix[:port]`` (or ``scheme://*``).

    ``suffix`` is lower-case and starts with "." (empty for a bare ``*`` host); the
    wildcard is greedy, so it matches one or more labels. ``port`` is explicit or the
    scheme's default (80/443).
    """

    scheme: str
    suffix: str
    port: int


class CORSPolicy(msgspec.Struct, frozen=True, omit_defaults=True):
    """HTTPCORSFilter (GEP-1767), precompiled for the data plane.

    Origins are normalised to ``scheme://host:port`` (lower-case, explicit port);
    ``allow_methods`` / ``allow_headers`` / ``expose_headers`` may hold ``*``.
    Header names are lower-case.
    """

    allow_all_origins: bool = False
    origins: frozenset[str] = frozenset()
    origin_patterns: tuple[OriginPattern, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int = 5


class Filters(msgspec.Struct, frozen=True, omit_defaults=True):
    """Filters of a rule or of one backendRef, applied in this order."""

    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    redirect: RequestRedirect | None = None
    rewrite: URLRewrite | None = None
    mirrors: tuple[RequestMirror, ...] = ()
    cors: CORSPolicy | None = None  # rule filters only


# --- backends --------------------------------------------------------------------------


class Endpoint(msgspec.Struct, frozen=True, omit_defaults=True):
    address: str
    port: int


ClusterProtocol = Literal["http1", "h2c", "h2", "tcp"]


class UpstreamTLS(msgspec.Struct, frozen=True, omit_defaults=True):
    """TLS the proxy originates to a cluster's endpoints (a BackendTLSPolicy).

    The chain is verified against ``ca_pem`` (or the system's trusted CAs with
    ``system_roots``); ``sni`` is sent as server name. The certificate must then carry
    one of ``hostnames`` (DNS SANs, wildcards in the certificate allowed) or one of
    ``uris`` (URI SANs, compared exactly).
    """

    policy: str  # "<ns>/<name>" of the BackendTLSPolicy
    sni: str
    ca_pem: str = ""
    system_roots: bool = False
    hostnames: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()


class Cluster(msgspec.Struct, frozen=True, omit_defaults=True):
    """The ready endpoints of one Service port ("ns/name:port").

    ``protocol`` is "h2c" for ports whose appProtocol says HTTP/2 with prior knowledge
    (kubernetes.io/h2c, grpc, ...) and for GRPCRoute backends without appProtocol; those
    get a cluster of their own, named "ns/name:port/h2c".
    """

    name: str
    endpoints: tuple[Endpoint, ...]
    protocol: ClusterProtocol = "http1"
    tls: UpstreamTLS | None = None


class WeightedBackend(msgspec.Struct, frozen=True, omit_defaults=True):
    weight: int
    # Exactly one of these: a cluster to send to, or a status to answer with (500 for an
    # invalid backendRef, per HTTPRouteRule.BackendRefs).
    cluster: str | None = None
    error_status: int | None = None
    filters: Filters | None = None


class RetryPolicy(msgspec.Struct, frozen=True, omit_defaults=True):
    """HTTPRouteRetry (GEP-1731). Connection errors and backendRequest timeouts are
    always retried; responses only when their status is in ``codes``."""

    attempts: int  # retries after the first try (the Gateway API's "attempts")
    codes: tuple[int, ...] = ()
    backoff: float = 0.0  # seconds, minimum wait between attempts


class SessionPersistence(msgspec.Struct, frozen=True, omit_defaults=True):
    """HTTPRouteRule.sessionPersistence (GEP-1619), resolved.

    ``name`` is the cookie's (generated from ``session`` when the spec names none) or the
    header's. ``session`` identifies the rule: sessions are never shared between rules,
    even to the same Service. ``absolute_timeout`` is in seconds; ``permanent`` cookies
    carry it as Max-Age.
    """

    type: Literal["Cookie", "Header"]
    name: str
    session: str  # "httproute/<ns>/<name>/rule/<i>"
    path: str = "/"
    absolute_timeout: float | None = None
    permanent: bool = False


class HTTPRouteRule(msgspec.Struct, frozen=True, omit_defaults=True):
    """One (rule, match) pair of an HTTPRoute or a GRPCRoute, as placed in the
    precedence order (a GRPCRoute's method match is compiled to a path match)."""

    name: str  # "httproute/<ns>/<name>/rule/<i>/match/<j>" (or "grpcroute/...")
    match: RouteMatch
    filters: Filters = Filters()
    backends: tuple[WeightedBackend, ...] = ()
    # Set when the rule cannot forward at all (no backendRefs, all weights 0, or an
    # unresolvable ExtensionRef filter): every request matching it gets this status.
    direct_status: int | None = None
    # HTTPRouteTimeouts in seconds; None when unset or "0s" (disabled).
    request_timeout: float | None = None
    backend_request_timeout: float | None = None
    retry: RetryPolicy | None = None
    session_persistence: SessionPersistence | None = None


class VirtualHost(msgspec.Struct, frozen=True, omit_defaults=True):
    hostname: str  # "foo.example.com", "*.example.com" or "*"
    routes: tuple[HTTPRouteRule, ...]


ListenerProtocol = Literal["HTTP", "HTTPS", "TLS", "TCP", "UDP"]


# --- L4: TCPRoute, TLSRoute, UDPRoute ----------------------------------------------------


class L4Backend(msgspec.Struct, frozen=True, omit_defaults=True):
    """One backendRef of an L4 route. ``cluster`` None: the backendRef is invalid, and
    this share of connections (datagrams) is rejected (dropped), as TCPRouteRule
    .BackendRefs says; a cluster without endpoints is rejected the same way."""

    weight: int
    cluster: str | None = None


class L4Route(msgspec.Struct, frozen=True, omit_defaults=True):
    """The weighted backends of the route that serves a TCP/UDP listener or an SNI name."""

    name: str  # "tcproute/<ns>/<name>", "tlsroute/<ns>/<name>", "udproute/<ns>/<name>"
    backends: tuple[L4Backend, ...]


class SNIRoute(msgspec.Struct, frozen=True, omit_defaults=True):
    """A TLS listener's route for one SNI name: exact, "*.suffix" or "*" (any, or none)."""

    hostname: str
    route: L4Route


class TLSCertificate(msgspec.Struct, frozen=True, omit_defaults=True):
    """One key pair an HTTPS listener presents. ``to_json`` redacts ``private_key``."""

    name: str  # "secret/<ns>/<name>"
    cert_chain: str  # PEM, leaf first
    private_key: str  # PEM
    # DNS names it serves on the listener (its SANs narrowed to the listener hostname):
    # exact, "*.suffix" or "*". The data plane picks the most specific match for the SNI
    # and falls back to the listener's first certificate.
    hostnames: tuple[str, ...] = ()


class ClientValidation(msgspec.Struct, frozen=True, omit_defaults=True):
    """Client certificates an HTTPS listener asks for (Gateway spec.tls.frontend).

    ``AllowValidOnly``: a certificate that verifies against ``ca_pem`` is required.
    ``AllowInsecureFallback``: every client is accepted (see turnout.dataplane.tls).
    """

    ca_pem: str
    mode: Literal["AllowValidOnly", "AllowInsecureFallback"] = "AllowValidOnly"


class ListenerTLS(msgspec.Struct, frozen=True, omit_defaults=True):
    """TLS termination of an HTTPS listener (mode Terminate), at least one certificate."""

    certificates: tuple[TLSCertificate, ...]
    client_validation: ClientValidation | None = None


class Listener(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str  # "<ns>/<gateway>/<listener>"
    address: str
    port: int  # the port to bind (spec port plus --port-offset)
    spec_port: int  # the port from the Gateway spec, used for redirects
    protocol: ListenerProtocol
    hostname: str | None = None
    virtual_hosts: tuple[VirtualHost, ...] = ()
    tls: ListenerTLS | None = None  # set for HTTPS and TLS Terminate listeners
    # TLS listeners: "Passthrough" splices the stream as it is; "Terminate" decrypts it.
    tls_mode: Literal["Passthrough", "Terminate"] | None = None
    # TLS listeners: one route per SNI name, most specific first (exact, longer
    # wildcards, "*"); a stream whose SNI matches none is rejected.
    sni_routes: tuple[SNIRoute, ...] = ()
    # TCP and UDP listeners: the route that receives every stream (datagram), if any.
    l4_route: L4Route | None = None


class Gateway(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str  # "<ns>/<name>"
    address: str
    listeners: tuple[Listener, ...]
    # spec.tls.backend.clientCertificateRef: presented on TLS connections to backends.
    # ``to_json`` redacts its private key.
    backend_client_certificate: TLSCertificate | None = None


class Config(msgspec.Struct, frozen=True, omit_defaults=True):
    version: int = 0
    gateways: tuple[Gateway, ...] = ()
    clusters: dict[str, Cluster] = {}
    # Secret (base64) the data plane signs session persistence cookies/headers with; the
    # control plane draws it once per process, so every worker accepts every other's
    # sessions. Redacted by ``to_json``.
    session_key: str = ""


_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()
_msgpack_decoder = msgspec.msgpack.Decoder(Config)


REDACTED = "<redacted>"


def to_json(config: Config) -> bytes:
    """JSON for people (the admin ``/config`` endpoint): private keys are redacted."""
    return _json_encoder.encode(redacted(config))


def redacted(config: Config) -> Config:
    """``config`` with every private key (and the session key) replaced by ``REDACTED``."""
    if config.session_key:
        config = msgspec.structs.replace(config, session_key=REDACTED)
    if not any(
        gw.backend_client_certificate is not None or any(ln.tls is not None for ln in gw.listeners)
        for gw in config.gateways
    ):
        return config
    gateways = tuple(_redacted_gateway(gateway) for gateway in config.gateways)
    return msgspec.structs.replace(config, gateways=gateways)


def _redacted_gateway(gateway: Gateway) -> Gateway:
    client = gateway.backend_client_certificate
    if client is not None:
        client = msgspec.structs.replace(client, private_key=REDACTED)
    return msgspec.structs.replace(
        gateway,
        listeners=tuple(_redacted_listener(ln) for ln in gateway.listeners),
        backend_client_certificate=client,
    )


def _redacted_listener(listener: Listener) -> Listener:
    if listener.tls is None:
        return listener
    certificates = tuple(
        msgspec.structs.replace(cert, private_key=REDACTED) for cert in listener.tls.certificates
    )
    return msgspec.structs.replace(
        listener, tls=msgspec.structs.replace(listener.tls, certificates=certificates)
    )


def to_msgpack(config: Config) -> bytes:
    return _msgpack_encoder.encode(config)


def from_msgpack(data: bytes) -> Config:
    return _msgpack_decoder.decode(data)
