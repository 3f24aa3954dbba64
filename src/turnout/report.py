"""Render the status of Gateway API objects for people: a table, YAML or JSON.

Shared by `turnout check` (status computed offline) and `turnout status` (status read
from a running gateway's admin API). The input is always the same thing a Kubernetes
controller would write: a list of Kubernetes-shaped objects whose `.status` is filled in
(GatewayClass and Gateway conditions, Gateway listener conditions, route per-parent
conditions of HTTPRoutes and GRPCRoutes). This module only reads that shape; it never computes a verdict itself,
except for `failing`, which says which of those conditions mean "not working".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

# A condition of one of these types with a status other than "True" means the object
# (or one of its listeners or route parents) is not doing what it says.
REQUIRED_CONDITION_TYPES = ("Accepted", "ResolvedRefs", "Programmed")

# Conditions whose "True" is the bad news (abnormal-true polarity in the spec's terms).
_ABNORMAL_TRUE = frozenset(
    {"Conflicted", "PartiallyInvalid", "OverlappingTLSConfig", "Degraded", "Detached"}
)


def _status_style(condition: str, status: str) -> str:
    if status not in ("True", "False"):
        return "yellow"
    good = (status == "True") != (condition in _ABNORMAL_TRUE)
    return "green" if good else "red"


@dataclass(frozen=True)
class Row:
    """One condition of an object, of one of its listeners or of one of its route parents."""

    object: str  # "Gateway infra/gw", "Gateway infra/gw listener http", "HTTPRoute ns/r parent ..."
    condition: str  # condition type; "" when the object has no condition at all
    status: str
    reason: str
    message: str


def object_name(item: Mapping[str, Any]) -> str:
    """`Kind ns/name`, or `Kind name` for cluster-scoped objects."""
    meta = item.get("metadata") or {}
    kind = str(item.get("kind", "?"))
    name = str(meta.get("name", "?"))
    namespace = meta.get("namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def parent_ref_name(parent_ref: Mapping[str, Any], route_namespace: str | None) -> str:
    """A route parentRef as `[Kind ]ns/name[/sectionName][:port]`.

    The namespace defaults to the route's own, as in the spec; the kind is shown only
    when it is not Gateway, the common case.
    """
    kind = parent_ref.get("kind") or "Gateway"
    namespace = parent_ref.get("namespace") or route_namespace
    name = str(parent_ref.get("name", "?"))
    text = f"{namespace}/{name}" if namespace else name
    if parent_ref.get("sectionName"):
        text += f"/{parent_ref['sectionName']}"
    if parent_ref.get("port") is not None:
        text += f":{parent_ref['port']}"
    return text if kind == "Gateway" else f"{kind} {text}"


def _condition_rows(subject: str, conditions: Iterable[Mapping[str, Any]]) -> list[Row]:
    return [
        Row(
            object=subject,
            condition=str(c.get("type", "")),
            status=str(c.get("status", "")),
            reason=str(c.get("reason", "")),
            message=str(c.get("message", "")),
        )
        for c in conditions
    ]


def _subjects(item: Mapping[str, Any]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Every (subject, conditions) pair of one object, the object itself first."""
    name = object_name(item)
    status = item.get("status") or {}
    subjects: list[tuple[str, list[Mapping[str, Any]]]] = []
    nested = status.get("listeners") or status.get("parents") or status.get("ancestors")
    if status.get("conditions") or not nested:
        subjects.append((name, list(status.get("conditions") or [])))
    for listener in status.get("listeners") or []:
        subjects.append(
            (f"{name} listener {listener.get('name', '?')}", list(listener.get("conditions") or []))
        )
    route_namespace = (item.get("metadata") or {}).get("namespace")
    for parent in status.get("parents") or []:
        ref = parent_ref_name(parent.get("parentRef") or {}, route_namespace)
        subjects.append((f"{name} parent {ref}", list(parent.get("conditions") or [])))
    for ancestor in status.get("ancestors") or []:
        ref = parent_ref_name(ancestor.get("ancestorRef") or {}, route_namespace)
        subjects.append((f"{name} ancestor {ref}", list(ancestor.get("conditions") or [])))
    return subjects


def rows(items: Iterable[Mapping[str, Any]]) -> list[Row]:
    """One row per condition, in the order of the items; an object without any
    condition still gets one (empty) row so that it does not silently vanish."""
    result: list[Row] = []
    for item in items:
        for subject, conditions in _subjects(item):
            if conditions:
                result.extend(_condition_rows(subject, conditions))
            else:
                result.append(Row(subject, "", "", "", "no status"))
    return result


def failing(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """A line for each Accepted/ResolvedRefs/Programmed condition that is not "True"."""
    return [
        f"{row.object}: {row.condition}={row.status or '?'} ({row.reason}) {row.message}".rstrip()
        for row in rows(items)
        if row.condition in REQUIRED_CONDITION_TYPES and row.status != "True"
    ]


def render_table(items: Iterable[Mapping[str, Any]], console: Console) -> None:
    # Condition type, status and reason stay on one line each (they are what people
    # scan for); the object and the free-text message wrap when the terminal is narrow.
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("OBJECT", overflow="fold", min_width=24)
    table.add_column("CONDITION", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("REASON", no_wrap=True)
    table.add_column("MESSAGE", overflow="fold")
    for row in rows(items):
        table.add_row(
            row.object,
            row.condition,
            Text(row.status, style=_status_style(row.condition, row.status) if row.status else ""),
            row.reason,
            Text(row.message, style="dim" if not row.condition else ""),
        )
    if console.is_terminal:
        console.print(table)
        return
    # Into a pipe or a file: no padding after the last column.
    with console.capture() as captured:
        console.print(table)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def dump_yaml(items: Iterable[Mapping[str, Any]]) -> str:
    """A YAML multi-document stream, one document per object (as `kubectl get -o yaml`
    of several files would give)."""
    return yaml.safe_dump_all(
        [_plain(item) for item in items], sort_keys=False, explicit_start=True
    )


def dump_json(items: Iterable[Mapping[str, Any]]) -> str:
    """A Kubernetes `v1 List`, as `kubectl get -o json` prints it."""
    document = {"apiVersion": "v1", "kind": "List", "items": [_plain(item) for item in items]}
    return json.dumps(document, indent=2) + "\n"


def _plain(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists, so yaml.safe_dump accepts them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
