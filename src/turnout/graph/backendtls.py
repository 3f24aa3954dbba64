"""BackendTLSPolicy: which policy applies to each Service port, and whether it can be used.

Part of the graph (Snapshot -> **graph** -> status, IR). Follows
``apis/v1/backendtlspolicy_types.go`` (GEP-1897) and GEP-713 (direct policy attachment):

* A policy targets Services of its own namespace (``targetRefs``: group "", kind
  Service), the whole Service or one port by name (``sectionName``). For a Service port
  the policy naming that port applies; else one naming the whole Service.
* Several policies on the same target and sectionName conflict: the oldest
  (creationTimestamp) wins, then the first by ``{namespace}/{name}``; the others get
  ``Accepted=False/Conflicted``. A policy with a sectionName and one without do not
  conflict.
* Trust comes from ``caCertificateRefs`` (ConfigMap, Core; Secret, implementation-
  specific; key ``ca.crt``) or ``wellKnownCACertificates: System``. An unusable ref makes
  ``ResolvedRefs=False`` (``InvalidCACertificateRef``, or ``InvalidKind`` for a kind turnout
  does not read); when none is usable the policy is ``Accepted=False/
  NoValidCACertificate``. A policy that cannot be used never falls back to plaintext:
  the route's backendRef becomes invalid and its share of requests gets 500.
* ``hostname`` is the SNI and, unless ``subjectAltNames`` is set, the name the backend
  certificate must carry; with ``subjectAltNames`` the certificate must carry one of
  those (DNS or URI SANs) and the hostname is not checked.

Status goes on ``status.ancestors``: one entry per Gateway of ours whose routes send to
a Service port the policy targets (won or lost).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from turnout.graph.model import GatewayNode, Key, Route, RouteNode
from turnout.graph.tls import CABundleProblem, load_ca_bundle
from turnout.resources import BackendTLSPolicy
from turnout.resources.meta import BackendObjectReference
from turnout.sources.snapshot import Snapshot
from turnout.status import conditions as c
from turnout.status.conditions import Condition

# PolicyStatus.Ancestors: at most 16 entries.
MAX_ANCESTORS = 16
WELL_KNOWN_SYSTEM = "System"

TargetKey = tuple[str, str, str]  # (namespace, service, sectionName or "")


@dataclass(frozen=True)
class UpstreamTLSSettings:
    """How to originate TLS to the endpoints of one Service port."""

    policy: Key
    sni: str
    ca_pem: str  # trust anchors (PEM); "" with system_roots
    system_roots: bool
    # Names the certificate must carry: DNS names (hostname, or Hostname SANs) and URIs.
    hostnames: tuple[str, ...]
    uris: tuple[str, ...]


@dataclass(eq=False)
class BackendTLSPolicyNode:
    obj: BackendTLSPolicy
    accepted: Condition
    resolved_refs: Condition
    # None when the policy cannot be used (conflicted, invalid, no valid CA).
    settings: UpstreamTLSSettings | None
    ancestors: list[GatewayNode] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return self.obj.key


class BackendTLSIndex:
    """Every BackendTLSPolicy of a Snapshot, validated and ranked per target."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.policies: dict[Key, BackendTLSPolicyNode] = {}
        self._by_target: dict[TargetKey, list[BackendTLSPolicyNode]] = defaultdict(list)
        candidates = sorted(snapshot.backend_tls_policies.values(), key=_precedence)
        for policy in candidates:
            node = _validate(snapshot, policy)
            self.policies[policy.key] = node
            for ref in policy.spec.target_refs:
                if ref.group == "" and ref.kind == "Service":
                    target = (policy.namespace, ref.name, ref.section_name or "")
                    self._by_target[target].append(node)
        for target, nodes in self._by_target.items():
            winner = nodes[0]
            for loser in nodes[1:]:
                _mark_conflicted(loser, winner, target)

    def for_port(
        self, namespace: str, service: str, port_name: str | None
    ) -> BackendTLSPolicyNode | None:
        """The policy that applies to a Service port (a port-specific one first)."""
        if port_name:
            nodes = self._by_target.get((namespace, service, port_name))
            if nodes:
                return nodes[0]
        nodes = self._by_target.get((namespace, service, ""))
        return nodes[0] if nodes else None

    def targeting(
        self, namespace: str, service: str, port_name: str | None
    ) -> Iterator[BackendTLSPolicyNode]:
        """Every policy targeting a Service port, conflicted ones included."""
        if port_name:
            yield from self._by_target.get((namespace, service, port_name), ())
        yield from self._by_target.get((namespace, service, ""), ())


def _precedence(policy: BackendTLSPolicy) -> tuple[str, str]:
    # Unknown age sorts last, as for route precedence.
    return (policy.metadata.creation_timestamp or "~", f"{policy.namespace}/{policy.name}")


def _mark_conflicted(
    loser: BackendTLSPolicyNode, winner: BackendTLSPolicyNode, target: TargetKey
) -> None:
    namespace, service, section = target
    shown = f"Service {namespace}/{service}" + (f" port {section}" if section else "")
    loser.accepted = c.policy_not_accepted(
        c.POLICY_ACCEPTED_CONFLICTED,
        f"BackendTLSPolicy {winner.obj.namespace}/{winner.obj.name} also targets {shown} "
        "and takes precedence (older, or first by namespace/name)",
    )
    loser.settings = None


def _validate(snapshot: Snapshot, policy: BackendTLSPolicy) -> BackendTLSPolicyNode:
    """Accepted and ResolvedRefs of a policy on its own (conflicts come later)."""
    validation = policy.spec.validation
    ca_pems: list[str] = []
    problems: list[CABundleProblem] = []
    for i, ref in enumerate(validation.ca_certificate_refs):
        loaded = load_ca_bundle(
            snapshot,
            policy.namespace,
            ref.group,
            ref.kind,
            ref.name,
            f"spec.validation.caCertificateRefs[{i}]",
        )
        if isinstance(loaded, CABundleProblem):
            problems.append(loaded)
        else:
            ca_pems.append(loaded)
    resolved = _resolved_refs(problems)
    invalid = _invalid_fields(policy)
    if invalid:
        accepted = c.policy_not_accepted(c.POLICY_ACCEPTED_INVALID, "; ".join(invalid))
    elif validation.ca_certificate_refs and not ca_pems:
        accepted = c.policy_not_accepted(
            c.POLICY_ACCEPTED_NO_VALID_CA_CERTIFICATE,
            "no caCertificateRef is usable: " + "; ".join(p.message for p in problems),
        )
    else:
        accepted = c.policy_accepted()
    settings = None
    if accepted.status == "True":
        sans = validation.subject_alt_names
        if sans:
            hostnames = tuple(
                s.hostname.lower() for s in sans if s.type == "Hostname" and s.hostname
            )
            uris = tuple(s.uri for s in sans if s.type == "URI" and s.uri)
        else:
            hostnames, uris = (validation.hostname.lower(),), ()
        settings = UpstreamTLSSettings(
            policy=policy.key,
            sni=validation.hostname.lower(),
            ca_pem="".join(ca_pems),
            system_roots=not validation.ca_certificate_refs,
            hostnames=hostnames,
            uris=uris,
        )
    return BackendTLSPolicyNode(policy, accepted, resolved, settings)


def _resolved_refs(problems: list[CABundleProblem]) -> Condition:
    if not problems:
        return c.policy_resolved_refs()
    # InvalidKind when the first problem is a kind turnout does not read.
    reason = (
        c.POLICY_RESOLVED_REFS_INVALID_KIND
        if problems[0].unsupported_kind
        else c.POLICY_RESOLVED_REFS_INVALID_CA_CERTIFICATE_REF
    )
    return c.policy_unresolved_refs(reason, "; ".join(p.message for p in problems))


def _invalid_fields(policy: BackendTLSPolicy) -> list[str]:
    """Values turnout cannot honour: Accepted=False/Invalid, as the spec asks for an
    unsupported wellKnownCACertificates value."""
    problems = []
    well_known = policy.spec.validation.well_known_ca_certificates
    if well_known is not None and well_known != WELL_KNOWN_SYSTEM:
        problems.append(
            f"spec.validation.wellKnownCACertificates: {well_known} is not supported; "
            f"turnout knows {WELL_KNOWN_SYSTEM} (the system's trusted CAs)"
        )
    for key in sorted(policy.spec.options):
        problems.append(f"spec.options[{key}]: turnout has no BackendTLSPolicy options")
    for i, ref in enumerate(policy.spec.target_refs):
        if ref.group != "" or ref.kind != "Service":
            kind = f"{ref.group}/{ref.kind}" if ref.group else ref.kind
            problems.append(
                f"spec.targetRefs[{i}]: kind {kind} is not supported; target a core Service"
            )
    return problems


# --- ancestors -------------------------------------------------------------------------


def assign_ancestors(
    index: BackendTLSIndex,
    routes: Iterable[RouteNode],
    cluster_ports: Mapping[str, tuple[str, str, str | None]],
) -> None:
    """Each policy's ancestors: the Gateways whose routes send to a port it targets.

    ``cluster_ports`` maps a cluster name ("ns/svc:port") to (namespace, service, port
    name) for every backendRef that resolved as far as a Service port.
    """
    if not index.policies:
        return  # the usual case; the loop below would look at every backendRef
    for route_node in routes:
        gateways = [parent.gateway for parent in route_node.parents]
        if not gateways:
            continue
        for cluster in _route_clusters(route_node.obj):
            port = cluster_ports.get(cluster)
            if port is None:
                continue
            for policy in index.targeting(*port):
                for gateway in gateways:
                    if gateway not in policy.ancestors and len(policy.ancestors) < MAX_ANCESTORS:
                        policy.ancestors.append(gateway)
    for policy in index.policies.values():
        policy.ancestors.sort(key=lambda gw: gw.key)


def _route_clusters(route: Route) -> Iterator[str]:
    """Cluster names ("ns/svc:port") of every Service a route sends to, mirrors included."""
    for rule in route.spec.rules:
        refs: list[BackendObjectReference] = list(rule.backend_refs)
        mirrors = [f.request_mirror for f in rule.filters]
        for backend in rule.backend_refs:
            mirrors.extend(f.request_mirror for f in backend.filters)
        refs.extend(m.backend_ref for m in mirrors if m is not None)
        for ref in refs:
            if ref.group == "" and ref.kind == "Service" and ref.port is not None:
                yield f"{ref.namespace or route.namespace}/{ref.name}:{ref.port}"
