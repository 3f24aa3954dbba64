"""What a conformance test asserts, read from its Go source.

Each helper call the suite's tests make most (GatewayAndHTTPRoutesMustBeAccepted,
HTTPRouteMustHaveCondition, GatewayStatusMustHaveListeners, the ExpectedResponse tables
fed to MakeRequestAndExpectEventuallyConsistentResponse, ...) becomes a :class:`Check`
with its arguments resolved to Python values. Calls the harness does not model are
listed in ``Expectations.unmodelled`` so a report can say what was not evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from golit import Unresolved, literal_spans, read_literal, tokenize
from suite import ConformanceTest, constants

NN = tuple[str, str]  # (namespace, name)


@dataclass
class Check:
    kind: str
    args: dict[str, Any]
    where: int  # offset in the source, to order checks and find the gateway of a request


@dataclass
class Expectations:
    checks: list[Check] = field(default_factory=list)
    unmodelled: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    mutation_at: int | None = None


MODELLED = {
    "GatewayAndHTTPRoutesMustBeAccepted",
    "GatewayAndRoutesMustBeAccepted",
    "HTTPRouteMustHaveResolvedRefsConditionsTrue",
    "HTTPRouteMustHaveCondition",
    "GatewayMustHaveCondition",
    "GatewayMustHaveLatestConditions",
    "HTTPRouteMustHaveLatestConditions",
    "GatewayClassMustHaveLatestConditions",
    "GatewayStatusMustHaveListeners",
    "GatewayListenerMustHaveConditions",
    "HTTPRouteMustHaveNoAcceptedParents",
    "GatewayMustHaveZeroRoutes",
    "WaitForGatewayAddress",
    "MakeRequestAndExpectEventuallyConsistentResponse",
    "MakeTLSRequestAndExpectEventuallyConsistentResponse",
    "NewGatewayRef",
    "NamespacesMustBeReady",
    "GetTLSSecret",
    "HTTPRouteMustHaveParents",
}


def _names(source: str) -> dict[str, Any]:
    names: dict[str, Any] = dict(constants())
    for m in re.finditer(r"^\s*(?:var\s+|const\s+)?(\w+)\s*:?=\s*(.+?)\s*$", source, re.M):
        var, rhs = m.group(1), m.group(2)
        if re.fullmatch(r"\"[^\"]*\"", rhs):
            names[var] = rhs[1:-1]
        conv = re.fullmatch(r"[\w.]+\(([\w.]+)\)", rhs)
        if conv:
            rhs = conv.group(1)
        if re.fullmatch(r"[\w.]+", rhs):
            short = rhs.rsplit(".", 1)[-1]
            if short in names:
                names[var] = names[short]
    return names


def _typed_vars(source: str, type_pattern: str, names: dict[str, Any]) -> dict[str, Any]:
    return {k: v[-1][1] for k, v in _typed_history(source, type_pattern, names).items()}


def _typed_history(
    source: str, type_pattern: str, names: dict[str, Any]
) -> dict[str, list[tuple[int, Any]]]:
    """Each variable's assignments in source order (tests reuse `gwNN` for several Gateways)."""
    out: dict[str, list[tuple[int, Any]]] = {}
    start = re.compile(rf"(\w+)\s*:?=\s*(?:&)?{type_pattern}\{{")
    for offset, text in literal_spans(source, start):
        m = start.match(source, offset)
        assert m is not None
        try:
            value = read_literal(text, names)
        except Unresolved:
            continue
        out.setdefault(m.group(1), []).append((offset, value))
        try:
            pass
        except Unresolved:
            continue
    return out


def _call_args(source: str, open_paren: int) -> list[str]:
    depth = 0
    args: list[str] = []
    cur: list[str] = []
    i = open_paren
    in_str = None
    while i < len(source):
        c = source[i]
        if in_str:
            cur.append(c)
            if c == "\\" and in_str == '"':
                cur.append(source[i + 1])
                i += 1
            elif c == in_str:
                in_str = None
        elif c in '"`':
            in_str = c
            cur.append(c)
        elif c in "({[":
            depth += 1
            if depth > 1:
                cur.append(c)
        elif c in ")}]":
            depth -= 1
            if depth == 0:
                args.append("".join(cur).strip())
                return args
            cur.append(c)
        elif c == "," and depth == 1:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    return args


class _Resolver:
    def __init__(self, source: str) -> None:
        self.names = _names(source)
        self.nn_history = _typed_history(source, r"types\.NamespacedName", self.names)
        self.nns = {k: v[-1][1] for k, v in self.nn_history.items()}
        self.list_history = _typed_history(source, r"\[\]types\.NamespacedName", self.names)
        self.at = 0
        self.conds = _typed_history(source, r"metav1\.Condition", self.names)
        self.cond_lists = _typed_history(source, r"\[\]metav1\.Condition", self.names)
        self.listeners = _typed_history(source, r"\[\]\w+\.ListenerStatus", self.names)
        self.parents = _typed_history(source, r"\[\]\w+\.RouteParentStatus", self.names)

    def list_at(self, var: str, at: int) -> Any:
        hist = self.list_history.get(var, [])
        before = [v for o, v in hist if o < at]
        return before[-1] if before else (hist[0][1] if hist else None)

    def value(self, text: str, table: dict[str, Any]) -> Any:
        text = text.strip()
        if text.endswith("..."):
            text = text[:-3]
        if re.fullmatch(r"\w+", text) and table is self.nns and text in self.nn_history:
            # The assignment in force where the call is made.
            hist = self.nn_history[text]
            before = [v for o, v in hist if o < self.at]
            return before[-1] if before else hist[0][1]
        if re.fullmatch(r"\w+", text) and text in table:
            entry = table[text]
            if (
                table is not self.nns
                and isinstance(entry, list)
                and entry
                and isinstance(entry[0], tuple)
            ):
                # A history of assignments: the one in force where the call is made.
                before = [v for o, v in entry if o < self.at]
                return before[-1] if before else entry[0][1]
            return entry
        return read_literal(text, self.names)

    def nn(self, text: str) -> NN:
        m = re.fullmatch(r"\s*kubernetes\.NewGatewayRef\((.*)\)\s*", text, re.S)
        if m:
            text = _call_args("(" + m.group(1) + ")", 0)[0]
        v = self.value(text, self.nns)
        if not isinstance(v, dict) or "Name" not in v:
            raise Unresolved(f"not a NamespacedName: {text}")
        return (str(v.get("Namespace", "")), str(v["Name"]))


def _request_tables(source: str, r: _Resolver) -> list[tuple[int, list[dict[str, Any]], str]]:
    out = []
    start = re.compile(r"(?:\[\]|\b)http\.ExpectedResponse\{")
    scheme = "https" if "MakeTLSRequestAndExpectEventuallyConsistentResponse" in source else "http"
    for offset, text in literal_spans(source, start):
        # Skip literals nested in an enclosing table already read.
        if any(o < offset < o + len(t) for o, ts, _ in out for t in [repr(ts)]):
            pass
        try:
            value = read_literal(text, r.names)
        except Unresolved as exc:
            out.append((offset, [{"__unresolved__": str(exc)}], scheme))
            continue
        cases = value if isinstance(value, list) else [value]
        out.append((offset, [c for c in cases if isinstance(c, dict)], scheme))
    # A table literal `[]http.ExpectedResponse{{...}}` also matched at each inner
    # `http.ExpectedResponse{` only when the inner ones are typed; drop inner duplicates.
    spans = [(o, o + len(t)) for o, t in literal_spans(source, start)]
    keep = []
    for (o, cases, scheme_), (s, e) in zip(out, spans, strict=True):
        if not any(s2 < s and e <= e2 for s2, e2 in spans):
            keep.append((o, cases, scheme_))
    return keep


def read(test: ConformanceTest) -> Expectations:
    src = test.source
    r = _Resolver(src)
    exp = Expectations()
    for m in re.finditer(r"\b(kubernetes|http|tls|grpc)\.([A-Z]\w+)\(", src):
        fn = m.group(2)
        if fn not in MODELLED:
            exp.unmodelled.append(f"{m.group(1)}.{fn}")
            continue
        args = _call_args(src, m.end() - 1)
        r.at = m.start()
        for binding in _loop_bindings(src, m.start(), r):
            saved = {k: list(v) for k, v in r.nn_history.items()}
            for var, value in binding.items():
                r.nn_history[var] = [(0, value)]
            try:
                check = _check(fn, args, r, m.start())
            except (Unresolved, IndexError, KeyError, TypeError) as exc:
                exp.unresolved.append(f"{fn}: {exc}")
                check = None
            finally:
                r.nn_history = saved
            if check is not None:
                line = src[src.rfind("\n", 0, m.start()) + 1 : m.start()]
                av = re.search(r"(\w+)(?:\s*,\s*\w+)?\s*:?=\s*$", line)
                check.args["addr_var"] = av.group(1) if av else None
                exp.checks.append(check)
    sender = re.compile(
        r"\b(?:http|tls)\.Make(?:TLS)?RequestAndExpectEventuallyConsistentResponse\("
    )
    for offset, cases, scheme in _request_tables(src, r):
        # The addresses come from the first request call after the table.
        nxt = re.compile(r"\b(?:http|tls)\.Make\w*\(").search(src, offset)
        if nxt and "Failure" in src[nxt.start() : nxt.end()]:
            # Sent expecting the request to fail (an invalid TLS listener).
            addr = _call_args(src, nxt.end() - 1)[3].strip()
            exp.checks.append(
                Check(
                    "requests",
                    {"cases": cases, "scheme": "https", "addr_var": addr, "expect_failure": True},
                    offset,
                )
            )
            continue
        m2 = sender.search(src, offset)
        addr = _call_args(src, m2.end() - 1)[3].strip() if m2 else ""
        if m2:
            scheme = "https" if src[m2.start() : m2.start() + 4] == "tls." else "http"
        exp.checks.append(
            Check("requests", {"cases": cases, "scheme": scheme, "addr_var": addr}, offset)
        )
    # The harness applies the manifests once; what a test checks after it changes or
    # deletes objects through the API is not replayed.
    mutation = re.search(
        r"\b(?:suite|s)\.Client\.(?:Delete|Update|Patch|Create)\(|\bDeleteHTTPRoute\(", src
    )
    if mutation:
        exp.mutation_at = mutation.start()
        exp.checks = [c for c in exp.checks if c.where < mutation.start()]
    exp.checks.sort(key=lambda c: c.where)
    return exp


def _loop_bindings(src: str, at: int, r: _Resolver) -> list[dict[str, Any]]:
    """One binding per element of each `for _, x := range list` loop enclosing ``at``."""
    bindings: list[dict[str, Any]] = [{}]
    loop = re.compile(r"for\s+_\s*,\s*(\w+)\s*:=\s*range\s+(\w+)\s*\{")
    for offset, body in literal_spans(src, loop):
        m = loop.match(src, offset)
        assert m is not None
        start = src.index("{", m.end() - 1)
        if not (start < at < start + len(body)):
            continue
        values = r.list_at(m.group(2), offset)
        if values:
            bindings = [{**b, m.group(1): v} for b in bindings for v in values]
    return bindings


def _check(fn: str, a: list[str], r: _Resolver, at: int) -> Check | None:
    if fn in ("GatewayAndHTTPRoutesMustBeAccepted", "GatewayAndRoutesMustBeAccepted"):
        gw_arg = a[4]
        listeners = []
        gm = re.fullmatch(r"\s*kubernetes\.NewGatewayRef\((.*)\)\s*", gw_arg, re.S)
        if gm:
            inner = _call_args("(" + gm.group(1) + ")", 0)
            listeners = [r.value(x, {}) for x in inner[1:]]
        gw = r.nn(gw_arg)
        rest = a[5:] if fn == "GatewayAndHTTPRoutesMustBeAccepted" else a[7:]
        routes: list[NN] = []
        for x in rest:
            x = x.strip()
            if x.endswith("..."):
                v = r.list_at(x[:-3].strip(), at)
                if v is None:
                    raise Unresolved(f"list {x}")
                routes += [(str(d.get("Namespace", "")), str(d["Name"])) for d in v]
            else:
                routes.append(r.nn(x))
        return Check("accepted", {"gateway": gw, "routes": routes, "listeners": listeners}, at)
    if fn == "WaitForGatewayAddress":
        return Check(
            "accepted",
            {"gateway": r.nn(a[3]), "routes": [], "listeners": [], "address_only": True},
            at,
        )
    if fn == "HTTPRouteMustHaveResolvedRefsConditionsTrue":
        cond = {"Type": "ResolvedRefs", "Status": "True", "Reason": "ResolvedRefs"}
        return Check(
            "route_condition", {"route": r.nn(a[3]), "gateway": r.nn(a[4]), "cond": cond}, at
        )
    if fn == "HTTPRouteMustHaveCondition":
        cond = r.value(a[5], r.conds)
        return Check(
            "route_condition", {"route": r.nn(a[3]), "gateway": r.nn(a[4]), "cond": cond}, at
        )
    if fn == "GatewayMustHaveCondition":
        return Check(
            "gateway_condition", {"gateway": r.nn(a[3]), "cond": r.value(a[4], r.conds)}, at
        )
    if fn in ("GatewayMustHaveLatestConditions", "HTTPRouteMustHaveLatestConditions"):
        kind = "Gateway" if fn.startswith("Gateway") else "HTTPRoute"
        return Check("latest", {"kind": kind, "nn": r.nn(a[3])}, at)
    if fn == "GatewayClassMustHaveLatestConditions":
        return Check("latest", {"kind": "GatewayClass", "nn": ("", "")}, at)
    if fn == "GatewayStatusMustHaveListeners":
        return Check(
            "listeners", {"gateway": r.nn(a[3]), "listeners": r.value(a[4], r.listeners)}, at
        )
    if fn == "GatewayListenerMustHaveConditions":
        conds = r.value(a[5], r.cond_lists)
        name = r.value(a[4], {})
        return Check(
            "listener_conditions", {"gateway": r.nn(a[3]), "listener": name, "conds": conds}, at
        )
    if fn == "HTTPRouteMustHaveNoAcceptedParents":
        return Check("no_accepted_parents", {"route": r.nn(a[3])}, at)
    if fn == "GatewayMustHaveZeroRoutes":
        return Check("zero_routes", {"gateway": r.nn(a[3])}, at)
    if fn == "HTTPRouteMustHaveParents":
        return Check("parents", {"route": r.nn(a[3]), "parents": r.value(a[4], r.parents)}, at)
    return None


def tokens_ok(text: str) -> bool:
    try:
        tokenize(text)
    except Unresolved:
        return False
    return True
