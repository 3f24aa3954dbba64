"""``parse_object``: one JSON/YAML document in, a typed model and field errors out.

Part of ``turnout.resources`` (sources -> **resources** -> Snapshot -> graph). It plays
the API server's part for the kinds turnout reads: pick the model by apiVersion and
kind, prune nulls, apply the CRD schema and defaults (pydantic), drop unknown fields
with a warning each, then run the CEL rules (``validation``). It never raises on bad
input: every problem becomes a ``FieldError`` with a Kubernetes-style field path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from turnout.resources.backendtlspolicy import BackendTLSPolicy
from turnout.resources.compact import compact
from turnout.resources.core import ConfigMap, EndpointSlice, Namespace, Secret, Service
from turnout.resources.gateway import Gateway, GatewayClass
from turnout.resources.grpcroute import GRPCRoute
from turnout.resources.httproute import HTTPRoute
from turnout.resources.listenerset import ListenerSet
from turnout.resources.meta import GATEWAY_GROUP, check_object_name
from turnout.resources.referencegrant import ReferenceGrant
from turnout.resources.tcproute import TCPRoute
from turnout.resources.tlsroute import TLSRoute
from turnout.resources.udproute import UDPRoute

Resource = (
    GatewayClass
    | Gateway
    | HTTPRoute
    | GRPCRoute
    | ListenerSet
    | TCPRoute
    | TLSRoute
    | UDPRoute
    | ReferenceGrant
    | Namespace
    | Service
    | EndpointSlice
    | Secret
    | ConfigMap
    | BackendTLSPolicy
)
"""Every top-level model turnout reads."""

ResourceType = (
    type[GatewayClass]
    | type[Gateway]
    | type[HTTPRoute]
    | type[GRPCRoute]
    | type[ListenerSet]
    | type[TCPRoute]
    | type[TLSRoute]
    | type[UDPRoute]
    | type[ReferenceGrant]
    | type[Namespace]
    | type[Service]
    | type[EndpointSlice]
    | type[Secret]
    | type[ConfigMap]
    | type[BackendTLSPolicy]
)

_GATEWAY_VERSIONS = frozenset({f"{GATEWAY_GROUP}/v1", f"{GATEWAY_GROUP}/v1beta1"})
_L4_VERSIONS = frozenset({f"{GATEWAY_GROUP}/v1", f"{GATEWAY_GROUP}/v1alpha2"})

KINDS: Mapping[str, tuple[ResourceType, frozenset[str]]] = {
    "GatewayClass": (GatewayClass, _GATEWAY_VERSIONS),
    "Gateway": (Gateway, _GATEWAY_VERSIONS),
    "HTTPRoute": (HTTPRoute, _GATEWAY_VERSIONS),
    # v1alpha2 GRPCRoute is the v1 type, deprecated but still served by the CRD.
    "GRPCRoute": (GRPCRoute, frozenset({f"{GATEWAY_GROUP}/v1", f"{GATEWAY_GROUP}/v1alpha2"})),
    # Standard channel since v1.5; x-k8s.io was the experimental group (XListenerSet).
    "ListenerSet": (ListenerSet, frozenset({f"{GATEWAY_GROUP}/v1"})),
    # The experimental channel still serves the deprecated alpha versions (the standard
    # channel serves only v1); their schema differences are checked in validation.
    "TCPRoute": (TCPRoute, _L4_VERSIONS),
    "UDPRoute": (UDPRoute, _L4_VERSIONS),
    "TLSRoute": (TLSRoute, _L4_VERSIONS | {f"{GATEWAY_GROUP}/v1alpha3"}),
    "ReferenceGrant": (ReferenceGrant, _GATEWAY_VERSIONS | {f"{GATEWAY_GROUP}/v1alpha2"}),
    # v1alpha3 is the deprecated version served next to v1 with the same schema.
    "BackendTLSPolicy": (
        BackendTLSPolicy,
        frozenset({f"{GATEWAY_GROUP}/v1", f"{GATEWAY_GROUP}/v1alpha3"}),
    ),
    "Namespace": (Namespace, frozenset({"v1"})),
    "Service": (Service, frozenset({"v1"})),
    "Secret": (Secret, frozenset({"v1"})),
    "ConfigMap": (ConfigMap, frozenset({"v1"})),
    "EndpointSlice": (EndpointSlice, frozenset({"discovery.k8s.io/v1"})),
}
"""kind -> (model, accepted apiVersions)."""

CLUSTER_SCOPED_KINDS = frozenset({"GatewayClass", "Namespace"})


@dataclass(frozen=True)
class FieldError:
    """A problem with one field; ``path`` uses JSON names (``spec.rules[0].matches``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class ParseResult:
    obj: Resource | None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    ignored: bool = False
    raw: dict[str, Any] = field(default_factory=dict)
    """The document as given (the basis for ``turnout check -o yaml``)."""
    api_version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    """The effective namespace ("" for cluster-scoped kinds), when the name is known."""
    name: str | None = None


def parse_object(doc: Mapping[str, Any]) -> ParseResult:
    """Validate one document like the API server would with the CRDs installed."""
    if not isinstance(doc, Mapping):
        # Reachable from YAML/JSON input despite the annotation.
        problem = FieldError("", "a document must be an object (mapping)")  # type: ignore[unreachable]
        return ParseResult(None, [problem])
    raw = dict(doc)
    api_version, kind = raw.get("apiVersion"), raw.get("kind")
    ident = _identity(raw)
    errors = [
        FieldError(name, "required")
        for name, v in (("apiVersion", api_version), ("kind", kind))
        if not isinstance(v, str) or not v
    ]
    if errors:
        return ParseResult(None, errors, raw=raw, **ident)
    assert isinstance(kind, str) and isinstance(api_version, str)
    known = KINDS.get(kind)
    if known is None or api_version not in known[1]:
        return ParseResult(None, ignored=True, raw=raw, **ident)
    try:
        return _parse_known(known[0], raw, ident)
    except RecursionError:
        return ParseResult(
            None, [FieldError("", "document is nested too deeply")], raw=raw, **ident
        )


def _parse_known(model: ResourceType, raw: dict[str, Any], ident: dict[str, Any]) -> ParseResult:
    # Local import: validation imports the models, and this module is imported by them
    # only through the package __init__.
    from turnout.resources.validation import validate_resource

    doc = {k: v for k, v in raw.items() if k != "status"}
    if _has_nulls(doc):
        doc = _prune_nulls(doc)
    errors: list[FieldError] = []
    name = raw.get("metadata", {}).get("name") if isinstance(raw.get("metadata"), dict) else None
    if isinstance(name, str) and name:
        problem = check_object_name(str(raw["kind"]), name)
        if problem:
            errors.append(FieldError("metadata.name", problem))
    try:
        obj: Resource = model.model_validate(doc)
    except ValidationError as exc:
        errors.extend(pydantic_errors(exc.errors()))
        return ParseResult(None, errors, raw=raw, **ident)
    warnings: list[FieldError] = []
    # One walk shares pydantic's per-instance bookkeeping (memory, see compact) and finds
    # out whether there are unknown fields; the rare documents with some are walked again
    # for their warnings, in field order.
    if compact(obj):
        drop_unknown_fields(obj, "", warnings)
    errors.extend(validate_resource(obj))
    if errors:
        return ParseResult(None, errors, warnings, raw=raw, **ident)
    return ParseResult(obj, [], warnings, raw=raw, **ident)


def _identity(raw: Mapping[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, namespace and name as far as they can be read from ``raw``."""
    api_version, kind = raw.get("apiVersion"), raw.get("kind")
    meta = raw.get("metadata")
    name = namespace = None
    if isinstance(meta, Mapping) and isinstance(meta.get("name"), str):
        name = meta["name"]
        ns = meta.get("namespace")
        if kind in CLUSTER_SCOPED_KINDS:
            namespace = ""
        else:
            namespace = ns if isinstance(ns, str) and ns else "default"
    return {
        "api_version": api_version if isinstance(api_version, str) else None,
        "kind": kind if isinstance(kind, str) else None,
        "namespace": namespace,
        "name": name,
    }


def _has_nulls(value: Any) -> bool:
    """Whether ``_prune_nulls`` would change anything (most documents have no nulls, and
    a walk that builds nothing is cheaper than a copy)."""
    if isinstance(value, dict):
        return any(v is None or _has_nulls(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nulls(v) for v in value)
    return False


def _prune_nulls(value: Any) -> Any:
    """Drop null-valued keys: the API server prunes them before defaulting."""
    if isinstance(value, Mapping):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


# --- unknown fields -------------------------------------------------------------------


def drop_unknown_fields(model: BaseModel, path: str, warnings: list[FieldError]) -> None:
    """Remove fields kept by ``extra="allow"`` from the tree, one warning per field."""
    extra = model.__pydantic_extra__
    if extra:
        for key in extra:
            warnings.append(FieldError(join_path(path, key), "unknown field, ignored"))
        extra.clear()
    for name, info in type(model).model_fields.items():
        _walk(getattr(model, name), join_path(path, info.alias or name), warnings)


def _walk(value: Any, path: str, warnings: list[FieldError]) -> None:
    if isinstance(value, BaseModel):
        drop_unknown_fields(value, path, warnings)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", warnings)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, BaseModel | list):
                _walk(item, join_path(path, key), warnings)


# --- pydantic errors -> FieldError ----------------------------------------------------

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def join_path(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    if not _IDENT_RE.match(text):
        return f"{path}[{text}]"
    return f"{path}.{text}" if path else text


def pydantic_errors(details: list[ErrorDetails]) -> list[FieldError]:
    out: list[FieldError] = []
    seen: set[FieldError] = set()
    for err in details:
        path = ""
        loc = err["loc"]
        for i, key in enumerate(loc):
            # A bad dict key is reported at (..., key, "[key]"): the marker is not a field.
            if key == "[key]" and i:
                continue
            path = join_path(path, key)
        fe = FieldError(path, _message(err))
        if fe not in seen:
            seen.add(fe)
            out.append(fe)
    return out


_TYPE_MESSAGES = {
    "missing": "required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be a boolean",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind == "literal_error":
        return f"unsupported value {_show(err.get('input'))}: must be one of {ctx.get('expected')}"
    if kind == "too_long":
        noun = "entries" if isinstance(err.get("input"), dict) else "items"
        return f"must have at most {ctx.get('max_length')} {noun}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    return str(err["msg"])


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def to_dict(obj: BaseModel) -> dict[str, Any]:
    """The model as JSON data with camelCase names, defaults included, nulls left out."""
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)
