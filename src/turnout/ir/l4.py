"""Compile TLS, TCP and UDP listeners (TLSRoute, TCPRoute, UDPRoute) into the IR.

Part of ``turnout.ir`` (graph -> **IR** -> data plane); called by ``turnout.ir.build`` for
listeners that are not HTTP/HTTPS. Conflicts between routes are settled here, once: of
several routes attached to one TCP/UDP listener only the oldest (creationTimestamp,
then ``{namespace}/{name}``) gets traffic; on a TLS listener the same holds per SNI
hostname. The others stay Accepted (conformance TCPRouteMultipleRoutesAttachment).
"""

from __future__ import annotations

import msgspec

from turnout.graph import hostnames
from turnout.graph.model import L4RouteNode, ListenerNode
from turnout.ir import model as ir

_PROTOCOLS: dict[str, ir.ListenerProtocol] = {"TLS": "TLS", "TCP": "TCP", "UDP": "UDP"}


def listener(node: ListenerNode, address: str, port_offset: int) -> ir.Listener:
    """The IR of a servable TLS, TCP or UDP listener."""
    protocol = _PROTOCOLS[node.spec.protocol]
    routes = sorted(node.l4_routes, key=lambda entry: entry[0].age_key)
    base = ir.Listener(
        name=node.ir_name,
        address=address,
        port=node.spec.port + port_offset,
        spec_port=node.spec.port,
        protocol=protocol,
        hostname=node.spec.hostname,
    )
    if protocol != "TLS":
        l4_route = _route(routes[0][0]) if routes else None
        return msgspec.structs.replace(base, l4_route=l4_route)
    tls_spec = node.spec.tls
    mode = "Passthrough" if tls_spec is not None and tls_spec.mode == "Passthrough" else "Terminate"
    by_hostname: dict[str, ir.L4Route] = {}
    for route, route_hostnames in routes:  # oldest first: the first claim of a name wins
        for hostname in route_hostnames:
            by_hostname.setdefault(hostname, _route(route))
    ordered = sorted(by_hostname, key=lambda h: (hostnames.specificity(h), h))
    return msgspec.structs.replace(
        base,
        tls_mode=mode,
        sni_routes=tuple(ir.SNIRoute(h, by_hostname[h]) for h in ordered),
        tls=_terminate_tls(node) if mode == "Terminate" else None,
    )


def _route(node: L4RouteNode) -> ir.L4Route:
    return ir.L4Route(
        name=f"{node.kind.lower()}/{node.namespace}/{node.name}",
        backends=tuple(ir.L4Backend(b.weight, b.cluster) for b in node.backends),
    )


def _terminate_tls(node: ListenerNode) -> ir.ListenerTLS:
    return ir.ListenerTLS(
        tuple(
            ir.TLSCertificate(
                name=f"secret/{cert.secret[0]}/{cert.secret[1]}",
                cert_chain=cert.cert_chain_pem,
                private_key=cert.private_key_pem,
                hostnames=cert.hostnames,
            )
            for cert in node.certificates
        )
    )
