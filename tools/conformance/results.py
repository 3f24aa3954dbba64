"""Turn a run.py --json file into the RESULTS.md table.

Usage: ``.venv/bin/python tools/conformance/results.py RUN.json COMMIT > tools/conformance/RESULTS.md``
"""

from __future__ import annotations

import datetime
import json
import sys
from typing import Any

# Helpers that build values or log, asserting nothing.
_SETUP = {"NewResourceRef", "AddEntropy", "DumpEchoLogs"}
ORDER = ["pass", "partial", "fail", "not evaluated", "skipped"]


def why(r: dict[str, Any]) -> str:
    parts = []
    if r["result"] == "skipped":
        return "; ".join(r["why"])
    real = [w for w in r.get("why", []) if "(not evaluated)" not in w]
    skipped = [w for w in r.get("why", []) if "(not evaluated)" in w]
    if real:
        parts.append("FAILED: " + " | ".join(real)[:400])
    if skipped:
        parts.append("not evaluated: " + " | ".join(sorted(set(skipped)))[:300])
    if r.get("mutation"):
        parts.append("checks after the test changes objects through the API are not replayed")
    if r.get("unresolved"):
        parts.append("Go expressions not read: " + "; ".join(sorted(set(r["unresolved"])))[:200])
    if r.get("unmodelled"):
        parts.append("helpers not modelled: " + ", ".join(r["unmodelled"]))
    if r.get("evaluated") is not None and r["result"] != "skipped":
        parts.insert(0, f"{r['evaluated']} assertions")
    return "; ".join(parts).replace("|", "/").replace("\n", " ")


def main() -> None:
    with open(sys.argv[1]) as f:
        data = json.load(f)
    commit = sys.argv[2] if len(sys.argv) > 2 else "?"
    results: dict[str, dict[str, Any]] = data["results"]
    for r in results.values():
        # A helper the harness does not model (gRPC requests, mirror logs...) asserted
        # something unchecked: never call that a pass.
        asserting = [u for u in r.get("unmodelled", []) if u.rsplit(".", 1)[-1] not in _SETUP]
        if r["result"] == "pass" and asserting:
            r["result"] = "partial"
    print("# Conformance audit results (local harness)\n")
    print(
        f"- run: {datetime.date.today().isoformat()}, turnout commit `{commit}`, suite `{data['suite']}`"
    )
    print("- harness: tools/conformance/run.py (see README.md: what it checks and what it cannot)")
    print("- pass = every assertion the harness could read held; partial = those held but some")
    print("  assertions of the test could not be evaluated (listed); fail = an assertion failed;")
    print("  not evaluated = nothing of the test could be checked; skipped = a feature turnout")
    print("  does not claim in GatewayClass supportedFeatures (the suite would not run it).\n")
    print("## Summary per profile\n")
    print("| profile | " + " | ".join(ORDER) + " |")
    print("|---|" + "---|" * len(ORDER))
    for prof in ("GATEWAY-HTTP", "GATEWAY-GRPC"):
        counts = {k: 0 for k in ORDER}
        for r in results.values():
            if prof in r["profiles"]:
                counts[r["result"]] += 1
        print(f"| {prof} | " + " | ".join(str(counts[k]) for k in ORDER) + " |")
    print("\n## Per test\n")
    print("| test | profiles | result | notes |")
    print("|---|---|---|---|")
    for name in sorted(results):
        r = results[name]
        profs = ", ".join(p.replace("GATEWAY-", "") for p in r["profiles"])
        prov = " (provisional)" if r.get("provisional") else ""
        print(f"| {name}{prov} | {profs} | {r['result']} | {why(r)} |")


if __name__ == "__main__":
    main()
