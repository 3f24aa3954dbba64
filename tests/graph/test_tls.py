"""Listener TLS verdicts the file loader cannot produce (the CRD's CEL refuses them)."""

from __future__ import annotations

from turnout import DEFAULT_CONTROLLER_NAME, graph
from turnout.resources import Gateway, GatewayClass
from turnout.sources.snapshot import Snapshot


def test_passthrough_on_https_listener_is_unsupported_value() -> None:
    gateway_class = GatewayClass.model_validate(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": "turnout"},
            "spec": {"controllerName": DEFAULT_CONTROLLER_NAME},
        }
    )
    gateway = Gateway.model_validate(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "default"},
            "spec": {
                "gatewayClassName": "turnout",
                "listeners": [
                    {"name": "http", "port": 80, "protocol": "HTTP"},
                    {
                        "name": "https",
                        "port": 443,
                        "protocol": "HTTPS",
                        "tls": {"mode": "Passthrough", "certificateRefs": [{"name": "c"}]},
                    },
                ],
            },
        }
    )
    snapshot = Snapshot(
        gateway_classes={"turnout": gateway_class}, gateways={("default", "gw"): gateway}
    )
    built = graph.build(
        snapshot,
        controller_name=DEFAULT_CONTROLLER_NAME,
        addresses={("default", "gw"): "127.0.0.1"},
    )
    node = built.gateways[("default", "gw")]
    https = node.listeners[1]
    accepted = next(c for c in https.conditions if c.type == "Accepted")
    assert (accepted.status, accepted.reason) == ("False", "UnsupportedValue")
    assert https.supported_kinds == []
    assert not https.servable
    gateway_accepted = node.conditions[0]
    assert (gateway_accepted.status, gateway_accepted.reason) == ("True", "ListenersNotValid")
