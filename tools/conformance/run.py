"""Run the Gateway API conformance scenarios against `turnout run` (a local harness).

Usage: ``.venv/bin/python tools/conformance/run.py [--profile HTTP|GRPC|all] [-k NAME]``.
It reads the suite from the mirror at run time and exits 0 with a note when the mirror
is absent. See README.md beside it for what is and is not checked.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import suite

if not suite.available():
    print("conformance mirror not found; nothing to run")
    sys.exit(0)

import env
import expect

from turnout.features import FEATURE_TESTS

HTTP_CORE = {"Gateway", "ReferenceGrant", "HTTPRoute"}
GRPC_CORE = {"Gateway", "ReferenceGrant", "GRPCRoute"}
GATEWAY_EXT = {
    "GatewayPort8080",
    "GatewayStaticAddresses",
    "GatewayHTTPListenerIsolation",
    "GatewayHTTPSListenerDetectMisdirectedRequests",
    "GatewayInfrastructurePropagation",
    "GatewayAddressEmpty",
    "GatewayBackendClientCertificate",
    "GatewayFrontendClientCertificateValidation",
    "GatewayFrontendClientCertificateValidationInsecureFallback",
    "ListenerSet",
}
BTLS = {"BackendTLSPolicy", "BackendTLSPolicySANValidation"}


def profiles(test: suite.ConformanceTest) -> list[str]:
    feats = set(test.features)
    out = []
    http_ext = (
        GATEWAY_EXT
        | BTLS
        | {f for f in suite.feature_names().values() if f.startswith("HTTPRoute")}
    )
    if (
        feats <= HTTP_CORE | http_ext
        and "HTTPRoute" in feats | {"HTTPRoute"}
        and not feats & {"GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute", "Mesh"}
    ):
        out.append("GATEWAY-HTTP")
    if feats <= GRPC_CORE | GATEWAY_EXT | BTLS and (
        "GRPCRoute" in feats or not feats & {"HTTPRoute"}
    ):
        out.append("GATEWAY-GRPC")
    return out


# ---------------------------------------------------------------- status look-ups


def find(items: list[dict[str, Any]], kind: str, nn: tuple[str, str]) -> dict[str, Any] | None:
    for it in items:
        md = it.get("metadata", {})
        if (
            it.get("kind") == kind
            and md.get("name") == nn[1]
            and (md.get("namespace") or "") == nn[0]
        ):
            return it
    return None


def has_cond(conds: list[dict[str, Any]], want: dict[str, Any]) -> bool:
    for c in conds:
        if (
            c.get("type") == want.get("Type")
            and (not want.get("Status") or c.get("status") == want.get("Status"))
            and (not want.get("Reason") or c.get("reason") == want.get("Reason"))
        ):
            return True
    return False


def latest(obj: dict[str, Any], conds: list[dict[str, Any]]) -> str | None:
    gen = obj.get("metadata", {}).get("generation")
    for c in conds:
        if c.get("observedGeneration") != gen:
            return f"{c.get('type')} observedGeneration {c.get('observedGeneration')} != generation {gen}"
    return None


def route(items: list[dict[str, Any]], nn: tuple[str, str]) -> dict[str, Any] | None:
    return find(items, "HTTPRoute", nn) or find(items, "GRPCRoute", nn)


def parents_for(r: dict[str, Any], gw: tuple[str, str]) -> list[dict[str, Any]]:
    rns = r["metadata"].get("namespace", "")
    out = []
    for p in r.get("status", {}).get("parents", []):
        ref = p.get("parentRef", {})
        if ref.get("name") == gw[1] and ref.get("namespace", rns) == gw[0]:
            out.append(p)
    return out


def check_status(kind: str, a: dict[str, Any], items: list[dict[str, Any]]) -> str | None:
    """None when the check holds, else why not."""
    if kind == "accepted":
        gw = find(items, "Gateway", a["gateway"])
        if gw is None:
            return f"Gateway {a['gateway']} not in /status"
        st = gw.get("status", {})
        if not [x for x in st.get("addresses", []) if x.get("type")]:
            return f"Gateway {a['gateway']} has no address with a type"
        if err := latest(gw, st.get("conditions", [])):
            return f"Gateway {err}"
        for nn in a["routes"]:
            r = route(items, nn)
            if r is None:
                return f"route {nn} not in /status"
            ps = parents_for(r, a["gateway"])
            ok = False
            for p in ps:
                ref = p["parentRef"]
                if p.get("controllerName") != env.CONTROLLER:
                    continue
                if ref.get("group") != "gateway.networking.k8s.io" or ref.get("kind") != "Gateway":
                    return f"route {nn} parentRef status lacks group/kind: {ref}"
                if nn[0] != a["gateway"][0] and ref.get("namespace") != a["gateway"][0]:
                    return f"route {nn} parentRef status lacks namespace: {ref}"
                if err := latest(r, p.get("conditions", [])):
                    return f"route {nn} {err}"
                if has_cond(
                    p.get("conditions", []),
                    {"Type": "Accepted", "Status": "True", "Reason": "Accepted"},
                ):
                    ok = True
            if not ok:
                return f"route {nn} not Accepted by {a['gateway']}: {[p.get('conditions') for p in ps]}"
        for lst in [] if a.get("address_only") else st.get("listeners", []):
            if a["listeners"] and lst["name"] not in a["listeners"]:
                continue
            for t in ("ResolvedRefs", "Accepted", "Programmed"):
                if not has_cond(lst.get("conditions", []), {"Type": t, "Status": "True"}):
                    return f"listener {lst['name']} not {t}=True"
        return None
    if kind == "route_condition":
        r = route(items, a["route"])
        if r is None:
            return f"route {a['route']} not in /status"
        for p in r.get("status", {}).get("parents", []):
            if err := latest(r, p.get("conditions", [])):
                return f"route {a['route']} {err}"
        for p in parents_for(r, a["gateway"]):
            if has_cond(p.get("conditions", []), a["cond"]):
                return None
        return f"route {a['route']} lacks {a['cond']} for {a['gateway']}: {r.get('status')}"
    if kind == "gateway_condition":
        gw = find(items, "Gateway", a["gateway"])
        if gw is None:
            return "gateway not in /status"
        conds = gw.get("status", {}).get("conditions", [])
        if err := latest(gw, conds):
            return err
        return None if has_cond(conds, a["cond"]) else f"Gateway lacks {a['cond']}: {conds}"
    if kind == "latest":
        if a["kind"] == "GatewayClass":
            obj = find(items, "GatewayClass", ("", env.CLASS))
        else:
            obj = find(items, a["kind"], a["nn"])
        if obj is None:
            return f"{a['kind']} {a['nn']} not in /status"
        conds = obj.get("status", {}).get("conditions", [])
        for p in obj.get("status", {}).get("parents", []):
            conds = conds + p.get("conditions", [])
        if not conds:
            return "no conditions"
        return latest(obj, conds)
    if kind == "listeners":
        gw = find(items, "Gateway", a["gateway"])
        if gw is None:
            return "gateway not in /status"
        return listeners_match(a["listeners"], gw.get("status", {}).get("listeners", []))
    if kind == "listener_conditions":
        gw = find(items, "Gateway", a["gateway"])
        if gw is None:
            return "gateway not in /status"
        for lst in gw.get("status", {}).get("listeners", []):
            if lst["name"] == a["listener"]:
                for c in a["conds"]:
                    if not has_cond(lst.get("conditions", []), c):
                        return f"listener {a['listener']} lacks {c}: {lst.get('conditions')}"
                return None
        return f"listener {a['listener']} not in status"
    if kind == "no_accepted_parents":
        r = route(items, a["route"])
        if r is None:
            return "route not in /status"
        ps = r.get("status", {}).get("parents", [])
        if not ps:
            return None
        if len(ps) > 1:
            return f"more than one parent: {ps}"
        if err := latest(r, ps[0].get("conditions", [])):
            return err
        return (
            None
            if has_cond(ps[0].get("conditions", []), {"Type": "Accepted", "Status": "False"})
            else f"{ps}"
        )
    if kind == "zero_routes":
        gw = find(items, "Gateway", a["gateway"])
        if gw is None:
            return "gateway not in /status"
        ls = gw.get("status", {}).get("listeners", [])
        if not ls or (len(ls) == 1 and ls[0].get("attachedRoutes") == 0):
            return None
        return f"listeners {[(x['name'], x.get('attachedRoutes')) for x in ls]}"
    if kind == "parents":
        r = route(items, a["route"])
        if r is None:
            return "route not in /status"
        for want in a["parents"]:
            ref = want.get("ParentRef", {})
            ok = any(
                p.get("parentRef", {}).get("name") == ref.get("Name")
                and all(has_cond(p.get("conditions", []), c) for c in want.get("Conditions", []))
                for p in r.get("status", {}).get("parents", [])
            )
            if not ok:
                return f"no parent like {want}: {r.get('status')}"
        return None
    return f"unknown check {kind}"


def listeners_match(want: list[dict[str, Any]], got: list[dict[str, Any]]) -> str | None:
    if len(want) != len(got):
        return f"{len(got)} listeners in status, want {len(want)}"
    for w in want:
        g = next((x for x in got if x.get("name") == w.get("Name")), None)
        if g is None:
            return f"listener {w.get('Name')} missing"
        kinds = {
            (k.get("group", "gateway.networking.k8s.io"), k.get("kind"))
            for k in g.get("supportedKinds", [])
        }
        wk = w.get("SupportedKinds") or []
        if not wk and kinds:
            return f"listener {w.get('Name')} supportedKinds {kinds}, want none"
        for k in wk:
            if (k.get("Group") or "gateway.networking.k8s.io", k.get("Kind")) not in kinds:
                return f"listener {w.get('Name')} supportedKinds {kinds} lacks {k}"
        if g.get("attachedRoutes") != w.get("AttachedRoutes", 0):
            return f"listener {w.get('Name')} attachedRoutes {g.get('attachedRoutes')}, want {w.get('AttachedRoutes', 0)}"
        for c in w.get("Conditions") or []:
            if not has_cond(g.get("conditions", []), c):
                return f"listener {w.get('Name')} lacks {c}: {g.get('conditions')}"
    return None


# ---------------------------------------------------------------- requests


def do_request(
    addr: str, port: int, scheme: str, case: dict[str, Any]
) -> tuple[int, dict[str, list[str]], bytes]:
    req = case.get("Request", {})
    host = req.get("Host", "")
    path = req.get("Path", "/") or "/"
    method = req.get("Method", "GET") or "GET"
    headers = {k: v for k, v in (req.get("Headers") or {}).items()}
    set_headers = case.get("BackendSetResponseHeaders") or {}
    headers["X-Echo-Set-Header"] = ",".join(f"{k}:{v}" for k, v in set_headers.items())
    default = 443 if scheme == "https" else 80
    # Go's client sends the URL's host when the test names none.
    headers["Host"] = host or (addr if port == default else f"{addr}:{port}")
    if scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            addr, port, timeout=10, context=ctx
        )
        # SNI is the Host's name, as the suite's TLS round tripper sends it.
        conn._tunnel_host = None  # type: ignore[attr-defined]
        conn.sock = ctx.wrap_socket(
            __import__("socket").create_connection((addr, port), 10),
            server_hostname=host.split(":")[0] or None,
        )
    else:
        conn = http.client.HTTPConnection(addr, port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        body = req.get("Body")
        if body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body.encode() if body else None)
        resp = conn.getresponse()
        hdrs: dict[str, list[str]] = {}
        for k, v in resp.getheaders():
            hdrs.setdefault(k.lower(), []).append(v)
        return resp.status, hdrs, resp.read()
    finally:
        conn.close()


def compare(
    case: dict[str, Any], scheme: str, status: int, hdrs: dict[str, list[str]], body: bytes
) -> str | None:
    resp = case.get("Response") or {}
    codes = list(resp.get("StatusCodes") or [])
    if resp.get("StatusCode"):
        codes.append(resp["StatusCode"])
    codes = codes or [200]
    if status not in codes:
        return f"status {status}, want one of {codes}"
    req = case.get("Request", {})
    if status in (200, 204):
        exp = case.get("ExpectedRequest")
        if exp is None:
            exp = dict(req)
        else:
            exp = {**exp.get("Request", {}), **{k: v for k, v in exp.items() if k != "Request"}}
        try:
            got = json.loads(body) if body else {}
        except ValueError:
            got = {}
        if status == 200 or got:
            want_method = exp.get("Method") or "GET"
            if exp.get("Host") and exp["Host"] != got.get("host"):
                return f"backend saw host {got.get('host')}, want {exp['Host']}"
            if exp.get("Path", "") != got.get("path"):
                return f"backend saw path {got.get('path')}, want {exp.get('Path', '')}"
            if want_method != got.get("method"):
                return f"backend saw method {got.get('method')}, want {want_method}"
            if case.get("Namespace", "") != got.get("namespace"):
                return f"backend namespace {got.get('namespace')}, want {case.get('Namespace', '')}"
            ghdrs = {k.lower(): v for k, v in (got.get("headers") or {}).items()}
            for k, v in (exp.get("Headers") or {}).items():
                if ",".join(ghdrs.get(k.lower(), ["<absent>"])) != v:
                    return f"backend header {k}={ghdrs.get(k.lower())}, want {v}"
            for k in exp.get("AbsentHeaders") or []:
                if k.lower() in ghdrs:
                    return f"backend header {k} present, want absent"
            if not str(got.get("pod", "")).startswith(case.get("Backend", "")):
                return f"pod {got.get('pod')}, want {case.get('Backend')}*"
        ign = resp.get("IgnoreWhitespace")
        for k, v in (resp.get("Headers") or {}).items():
            actual = ",".join(hdrs.get(k.lower(), ["<absent>"]))
            if ign:
                actual, v = actual.replace(" ", ""), v.replace(" ", "")
            if actual != v:
                return f"response header {k}={actual}, want {v}"
        for k, vals in (resp.get("ValidHeaderValues") or {}).items():
            actual = ",".join(hdrs.get(k.lower(), ["<absent>"]))
            if ign:
                actual = actual.replace(" ", "")
                vals = [x.replace(" ", "") for x in vals]
            if actual not in vals:
                return f"response header {k}={actual}, want one of {vals}"
        for k in resp.get("AbsentHeaders") or []:
            if k.lower() in hdrs:
                return f"response header {k} present, want absent"
    elif 300 <= status < 400:
        want = case.get("RedirectRequest")
        if not want:
            return None
        loc = urlsplit(hdrs.get("location", [""])[0])
        got_port = str(loc.port or "")
        if want.get("Host") and want["Host"] != loc.hostname:
            return f"redirect host {loc.hostname}, want {want['Host']}"
        wscheme = want.get("Scheme") or scheme
        if want.get("Port"):
            if str(want["Port"]) != got_port:
                return f"redirect port {got_port!r}, want {want['Port']}"
        elif loc.scheme == "http" and got_port not in ("", "80"):
            return f"redirect port {got_port} for http"
        elif loc.scheme == "https" and got_port not in ("", "443"):
            return f"redirect port {got_port} for https"
        if wscheme != loc.scheme:
            return f"redirect scheme {loc.scheme}, want {wscheme}"
        wpath = want.get("Path") or req.get("Path", "/").split("?")[0]
        if wpath != loc.path:
            return f"redirect path {loc.path}, want {wpath}"
    return None


# ---------------------------------------------------------------- one test


def gateway_port(
    docs: list[dict[str, Any]], nn: tuple[str, str], listeners: list[str]
) -> tuple[int, str]:
    for d in docs:
        if (
            d.get("kind") == "Gateway"
            and d["metadata"]["name"] == nn[1]
            and d["metadata"].get("namespace") == nn[0]
        ):
            ls = d["spec"]["listeners"]
            lst = next((x for x in ls if x["name"] in listeners), ls[0])
            return int(lst["port"]), "https" if lst["protocol"] == "HTTPS" else "http"
    return 80, "http"


def run_test(
    test: suite.ConformanceTest,
    backends: env.Backends,
    tls: list[dict[str, Any]],
    n: int,
    workdir: Path,
    timeout: float,
) -> dict[str, Any]:
    exp = expect.read(test)
    d = workdir / test.short_name
    docs = env.write_world(d, test.manifests, backends, tls)
    t = env.Turnout(d, env.address_pool(n), workdir / f"{test.short_name}.log")
    failures: list[str] = []
    evaluated = 0
    try:
        if not t.wait_ready():
            return {"result": "fail", "why": ["turnout did not become ready"], "exp": exp}
        acc = [x for x in exp.checks if x.kind == "accepted"]
        by_addr = {
            x.args["addr_var"]: (x.args["gateway"], x.args["listeners"])
            for x in acc
            if x.args.get("addr_var")
        }
        for c in exp.checks:
            if c.kind == "requests":
                # The assignment of the address variable in force where the table is.
                same = [
                    x
                    for x in acc
                    if x.args.get("addr_var") == c.args["addr_var"] and x.where < c.where
                ]
                if same:
                    cands = [(same[-1].args["gateway"], same[-1].args["listeners"])]
                elif c.args["addr_var"] in by_addr:
                    cands = [by_addr[c.args["addr_var"]]]
                elif re.search(
                    rf"\b{re.escape(c.args['addr_var'] or '-')}\s*:?=\s*net\.JoinHostPort",
                    test.source,
                ):
                    failures.append(
                        f"requests to {c.args['addr_var']} (an address:port built in Go): (not evaluated)"
                    )
                    continue
                else:
                    # Per-case addresses (tc.gwAddr...): any of the test's Gateways may answer.
                    cands = [(x.args["gateway"], x.args["listeners"]) for x in acc]
                if not cands:
                    failures.append("requests: no gateway to send them to (not evaluated)")
                    continue
                if c.args.get("expect_failure"):
                    failures.append("requests expected to fail: (not evaluated)")
                    continue
                if c.args["scheme"] == "https" and "ClientCertificate" in test.short_name:
                    # These send client certificates signed by CAs the suite makes in code.
                    failures.append("TLS requests with client certificates: (not evaluated)")
                    continue
                err = run_requests(t, docs, cands, c.args, timeout)
                evaluated += len(c.args["cases"])
            else:
                err = eventually(
                    lambda c=c: check_status(c.kind, c.args, t.status()["items"]), timeout
                )
                evaluated += 1
            if err:
                failures.append(f"{c.kind}: {err}")
        errors = t.status().get("errors", [])
    finally:
        t.stop()
    real = [f for f in failures if "(not evaluated)" not in f]
    if real:
        result = "fail"
    elif failures or not evaluated:
        result = "not evaluated" if not evaluated or failures else "pass"
        result = "partial" if evaluated and failures else result
    else:
        result = "pass"
    if result == "pass" and (exp.mutation_at is not None or exp.unresolved):
        result = "partial"
    return {"result": result, "why": failures, "exp": exp, "evaluated": evaluated, "errors": errors}


def eventually(fn: Any, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    err = fn()
    while err and time.monotonic() < deadline:
        time.sleep(0.2)
        err = fn()
    return err


def run_requests(
    t: env.Turnout,
    docs: list[dict[str, Any]],
    cands: list[tuple[tuple[str, str], list[str]]],
    args: dict[str, Any],
    timeout: float,
) -> str | None:
    err = None
    for case in args["cases"]:
        for gw in dict.fromkeys((g, tuple(listeners)) for g, listeners in cands):
            err = run_cases(
                t,
                docs,
                (gw[0], list(gw[1])),
                {**args, "cases": [case]},
                timeout if len(cands) == 1 else 3,
            )
            if err is None:
                break
        if err:
            return err
    return None


def run_cases(
    t: env.Turnout,
    docs: list[dict[str, Any]],
    gw: tuple[tuple[str, str], list[str]],
    args: dict[str, Any],
    timeout: float,
) -> str | None:
    item = eventually(
        lambda: None if find(t.status()["items"], "Gateway", gw[0]) else "no gw", timeout
    )
    if item:
        return f"Gateway {gw[0]} not in status"
    g = find(t.status()["items"], "Gateway", gw[0]) or {}
    addrs = g.get("status", {}).get("addresses", [])
    if not addrs:
        return f"Gateway {gw[0]} has no address"
    port, scheme = gateway_port(docs, gw[0], gw[1])
    if args["scheme"] == "https":
        scheme = "https"
    for case in args["cases"]:
        if "__unresolved__" in case:
            return f"request table not read: {case['__unresolved__']} (not evaluated)"
        if (case.get("Request") or {}).get("Protocol"):
            return f"request protocol {case['Request']['Protocol']} not modelled (not evaluated)"

        def one(case: dict[str, Any] = case) -> str | None:
            try:
                st, hd, body = do_request(addrs[0]["value"], port, scheme, case)
            except OSError as exc:
                return f"{case.get('Request')}: {exc}"
            err = compare(case, scheme, st, hd, body)
            return f"{case.get('Request')}: {err}" if err else None

        err = eventually(one, timeout)
        if err:
            return err
        for _ in range(2):  # the suite wants consistent answers, not one lucky one
            if err := one():
                return f"inconsistent: {err}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="all", choices=["HTTP", "GRPC", "all"])
    ap.add_argument("-k", default="")
    ap.add_argument("--timeout", type=float, default=8.0)
    ap.add_argument("--json", default="")
    ap.add_argument("--keep", action="store_true")
    opts = ap.parse_args()
    ours = set(FEATURE_TESTS) | HTTP_CORE | GRPC_CORE
    tests = []
    for test in suite.discover():
        profs = profiles(test)
        if opts.profile != "all":
            profs = [p for p in profs if p.endswith(opts.profile)]
        if not profs or (opts.k and opts.k not in test.short_name):
            continue
        tests.append((test, profs))
    workdir = Path(tempfile.mkdtemp(prefix="turnout-conformance-"))
    backends = env.Backends()
    tls = env.secret_docs()
    results = {}
    try:
        for n, (test, profs) in enumerate(tests):
            missing = sorted(set(test.features) - ours)
            if missing:
                results[test.short_name] = {
                    "result": "skipped",
                    "why": [f"feature not claimed: {', '.join(missing)}"],
                    "profiles": profs,
                }
                print(f"SKIP {test.short_name}: {missing}", flush=True)
                continue
            r = run_test(test, backends, tls, n, workdir, opts.timeout)
            exp = r.pop("exp")
            r["profiles"] = profs
            r["unmodelled"] = sorted(set(exp.unmodelled))
            r["unresolved"] = exp.unresolved
            r["mutation"] = exp.mutation_at is not None
            r["provisional"] = test.provisional
            r["features"] = test.features
            results[test.short_name] = r
            print(
                f"{r['result'].upper():5} {test.short_name} {r['why'][:3]} {'unmodelled=' + str(r['unmodelled']) if r['unmodelled'] else ''} {r['unresolved'] or ''}",
                flush=True,
            )
    finally:
        backends.stop()
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if opts.json:
        Path(opts.json).write_text(
            json.dumps({"suite": suite.head(), "results": results}, indent=1, default=str)
        )
    counts: dict[str, int] = {}
    for r in results.values():
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    print(counts)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
