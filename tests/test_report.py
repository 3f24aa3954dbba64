"""report: rows, failing, and the three renderings shared by `check` and `status`."""

from __future__ import annotations

import io
import json
from typing import Any

import yaml
from rich.console import Console

from turnout import report


def _cond(type_: str, status: str = "True", reason: str | None = None) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason or type_,
        "message": f"{type_} is {status}",
        "observedGeneration": 1,
        "lastTransitionTime": "1970-01-01T00:00:00Z",
    }


GATEWAY_CLASS: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "GatewayClass",
    "metadata": {"name": "turnout"},
    "status": {"conditions": [_cond("Accepted")], "supportedFeatures": [{"name": "Gateway"}]},
}
GATEWAY: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "gw", "namespace": "infra"},
    "status": {
        "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
        "conditions": [_cond("Accepted"), _cond("Programmed")],
        "listeners": [
            {
                "name": "http",
                "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                "attachedRoutes": 1,
                "conditions": [_cond("Accepted"), _cond("ResolvedRefs"), _cond("Programmed")],
            }
        ],
    },
}


def _route(resolved: str = "True") -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "team"},
        "status": {
            "parents": [
                {
                    "parentRef": {
                        "group": "gateway.networking.k8s.io",
                        "kind": "Gateway",
                        "namespace": "infra",
                        "name": "gw",
                        "sectionName": "http",
                    },
                    "controllerName": "turnout.dev/gateway-controller",
                    "conditions": [
                        _cond("Accepted"),
                        _cond("ResolvedRefs", resolved, "BackendNotFound"),
                    ],
                }
            ]
        },
    }


def test_rows_one_per_condition_with_subjects() -> None:
    rows = report.rows([GATEWAY_CLASS, GATEWAY, _route()])
    assert [(r.object, r.condition) for r in rows] == [
        ("GatewayClass turnout", "Accepted"),
        ("Gateway infra/gw", "Accepted"),
        ("Gateway infra/gw", "Programmed"),
        ("Gateway infra/gw listener http", "Accepted"),
        ("Gateway infra/gw listener http", "ResolvedRefs"),
        ("Gateway infra/gw listener http", "Programmed"),
        ("HTTPRoute team/r parent infra/gw/http", "Accepted"),
        ("HTTPRoute team/r parent infra/gw/http", "ResolvedRefs"),
    ]
    assert rows[0].status == "True"
    assert rows[0].message == "Accepted is True"


def test_parent_ref_defaults_and_port() -> None:
    assert report.parent_ref_name({"name": "gw"}, "team") == "team/gw"
    assert report.parent_ref_name({"name": "gw", "port": 80}, "team") == "team/gw:80"
    assert report.parent_ref_name({"kind": "Service", "name": "s"}, "ns") == "Service ns/s"


def test_object_without_status_still_has_a_row() -> None:
    route = {"kind": "HTTPRoute", "metadata": {"name": "lonely", "namespace": "a"}}
    assert report.rows([route]) == [
        report.Row("HTTPRoute a/lonely", "", "", "", "no status"),
    ]
    assert report.failing([route]) == []


def test_failing_none_when_all_true() -> None:
    assert report.failing([GATEWAY_CLASS, GATEWAY, _route()]) == []


def test_failing_reports_false_and_unknown() -> None:
    gateway = json.loads(json.dumps(GATEWAY))
    gateway["status"]["listeners"][0]["conditions"][2]["status"] = "Unknown"
    failures = report.failing([gateway, _route("False")])
    assert failures == [
        "Gateway infra/gw listener http: Programmed=Unknown (Programmed) Programmed is True",
        "HTTPRoute team/r parent infra/gw/http: ResolvedRefs=False (BackendNotFound) "
        "ResolvedRefs is False",
    ]


def test_failing_ignores_other_condition_types() -> None:
    gateway = json.loads(json.dumps(GATEWAY))
    gateway["status"]["listeners"][0]["conditions"].append(_cond("Conflicted", "False"))
    gateway["status"]["conditions"].append(_cond("Degraded", "False"))
    assert report.failing([gateway]) == []


def test_render_table_contains_every_row() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    report.render_table([GATEWAY, _route("False")], console)
    text = out.getvalue()
    header = text.splitlines()[0].split()
    assert header == ["OBJECT", "CONDITION", "STATUS", "REASON", "MESSAGE"]
    assert "Gateway infra/gw listener http" in text
    assert "BackendNotFound" in text
    assert "ResolvedRefs is False" in text
    assert all(line == line.rstrip() for line in text.splitlines())


def test_dump_yaml_is_a_multi_document_stream() -> None:
    docs = list(yaml.safe_load_all(report.dump_yaml([GATEWAY_CLASS, GATEWAY])))
    assert docs == [GATEWAY_CLASS, GATEWAY]


def test_dump_json_is_a_v1_list() -> None:
    doc = json.loads(report.dump_json([GATEWAY]))
    assert doc == {"apiVersion": "v1", "kind": "List", "items": [GATEWAY]}


def test_dump_empty() -> None:
    assert json.loads(report.dump_json([]))["items"] == []
    assert list(yaml.safe_load_all(report.dump_yaml([]))) == []


def test_table_colours_by_what_the_condition_means() -> None:
    gateway = json.loads(json.dumps(GATEWAY))
    listener = gateway["status"]["listeners"][0]
    listener["conditions"] = [_cond("Conflicted", "False"), _cond("Programmed", "False")]
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, color_system="standard")
    report.render_table([gateway], console)
    lines = out.getvalue().splitlines()
    conflicted = next(line for line in lines if "Conflicted" in line)
    programmed = next(line for line in lines if "listener http" in line and "Programmed" in line)
    assert "\x1b[32mFalse" in conflicted  # green: no conflict is good news
    assert "\x1b[31mFalse" in programmed  # red


def test_policy_ancestors_are_subjects() -> None:
    policy = {
        "kind": "BackendTLSPolicy",
        "metadata": {"name": "p", "namespace": "team"},
        "status": {
            "ancestors": [
                {
                    "ancestorRef": {
                        "group": "gateway.networking.k8s.io",
                        "kind": "Gateway",
                        "namespace": "infra",
                        "name": "gw",
                    },
                    "controllerName": "turnout.dev/gateway-controller",
                    "conditions": [_cond("Accepted", "False", "Conflicted"), _cond("ResolvedRefs")],
                }
            ]
        },
    }
    rows = report.rows([policy])
    assert [(r.object, r.condition, r.reason) for r in rows] == [
        ("BackendTLSPolicy team/p ancestor infra/gw", "Accepted", "Conflicted"),
        ("BackendTLSPolicy team/p ancestor infra/gw", "ResolvedRefs", "ResolvedRefs"),
    ]
    assert report.failing([policy]) == [
        "BackendTLSPolicy team/p ancestor infra/gw: Accepted=False (Conflicted) Accepted is False"
    ]
