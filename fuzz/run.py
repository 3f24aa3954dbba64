"""Run every fuzz target for a bounded time; exit 1 if any of them crashed.

    python fuzz/run.py --seconds 60 [--target http1_front ...]

Each target runs with libFuzzer's -max_total_time on a scratch copy of its seed corpus
(fuzz/corpus/<target>, committed) so new inputs do not litter the repository; crashes
are saved under fuzz/out/<target>/ and listed. ``make fuzz FUZZ_SECONDS=60`` calls this.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {
    "http1_front": "http.dict",
    "upstream_response": "http.dict",
    "manifest": "yaml.dict",
    "http2_front": "h2.dict",
    "clienthello": "tls.dict",
}


def run_target(name: str, seconds: int, out: Path) -> bool:
    work = out / name
    corpus = work / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    corpus.mkdir(parents=True)
    command = [
        sys.executable,
        str(HERE / f"{name}.py"),
        str(corpus),
        str(HERE / "corpus" / name),
        f"-max_total_time={seconds}",
        f"-dict={HERE / TARGETS[name]}",
        f"-artifact_prefix={work}/",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
    ]
    begun = time.time()
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, errors="replace")
    elapsed = time.monotonic() - started
    log = proc.stdout + proc.stderr
    (work / "log.txt").write_text(log)
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    cov = re.findall(r"cov: (\d+)", log)
    # Only this run's: artifacts of an earlier run stay until removed, and are not new.
    crashes = sorted(
        p.name
        for pattern in ("crash-*", "timeout-*", "oom-*")
        for p in work.glob(pattern)
        if p.stat().st_mtime >= begun
    )
    ok = proc.returncode == 0 and not crashes
    print(
        f"{name}: {'ok' if ok else 'FAILED'} in {elapsed:.0f}s, "
        f"{runs[-1] if runs else '?'} inputs, coverage {cov[-1] if cov else '?'}"
        + (f", rc={proc.returncode}" if proc.returncode else "")
    )
    if not ok:
        print("\n".join(f"  {work / c}" for c in crashes) or f"  see {work / 'log.txt'}")
        tail = [line for line in log.splitlines() if line.strip()][-25:]
        print("\n".join("  | " + line for line in tail))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="per target")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS))
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()
    results = [run_target(name, args.seconds, args.out) for name in args.target or TARGETS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
