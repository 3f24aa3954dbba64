"""Instructions per proxied request, counted by valgrind: a noise-free twin of the micro.

    python bench/instructions.py                 # 1 route and 1,000 routes
    python bench/instructions.py --routes 1 --annotate 25   # and the top functions

Runs ``bench/request_path_micro.py`` under ``valgrind --tool=callgrind`` twice (with
``--requests`` N and 3N), collecting only inside the two protocol callbacks the micro
drives (``ClientConnection.data_received`` and ``UpstreamConnection.data_received``),
so imports, configuration and the harness loop are not counted. The difference of the
two totals divided by 2N is what one request costs: httptools, the compiled data plane
and the CPython runtime they call, without the kernel. Unlike the micro's microseconds,
the count is the same on a busy machine as on a quiet one, so a change of 0.5% shows.
The micro's in-memory transports are Python; their two ``write`` calls per request are
part of the count (a constant, the same for every tree). Runs use a fixed hash seed and,
where ``setarch`` exists, no address randomisation: the same tree then gives the same
count to the instruction.

The counting hooks are the compiled functions' C symbols: the count needs the mypyc
build (``make install``); it refuses to run on the interpreted data plane.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MICRO = HERE / "request_path_micro.py"
COUNTED = (
    "CPyDef_http1___ClientConnection___data_received",
    "CPyDef_upstream___UpstreamConnection___data_received",
)


def count(routes: int, requests: int, out: Path) -> int:
    """Instructions valgrind counted inside the callbacks for ``requests`` requests
    (plus the micro's 1,000 warm-up ones)."""
    command = [
        *(["setarch", "-R"] if shutil.which("setarch") else []),  # no ASLR: same addresses
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        *(f"--toggle-collect={name}" for name in COUNTED),
        f"--callgrind-out-file={out}",
        sys.executable,
        str(MICRO),
        "--routes",
        str(routes),
        "--requests",
        str(requests),
        "--repeat",
        "1",
    ]
    # A fixed hash seed: with a random one, dict and set probing (header names, hosts)
    # changes from run to run, and so does the count (by ~2%).
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--routes", default="1,1000")
    parser.add_argument("--requests", type=int, default=2000, help="N (the runs do N and 3N)")
    parser.add_argument("--annotate", type=int, default=0, help="list the top functions")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("SKIP: valgrind is not installed (apt-get install -y valgrind)")
        return 0
    sys.path.insert(0, str(HERE.parent / "src"))
    from turnout.dataplane import native

    if native.mode() != "compiled" or native.stale():
        raise SystemExit("the data plane here is not compiled, or stale: run make install first")
    n = args.requests
    with tempfile.TemporaryDirectory(prefix="turnout-instructions-") as name:
        tmp = Path(name)
        for routes in (int(r) for r in args.routes.split(",")):
            small = count(routes, n, tmp / "small.out")
            large = count(routes, 3 * n, tmp / "large.out")
            print(f"{routes} route(s): {(large - small) / (2 * n):,.0f} instructions per request")
            if args.annotate:
                listing = subprocess.run(
                    ["callgrind_annotate", str(tmp / "large.out")],
                    capture_output=True,
                    text=True,
                ).stdout.splitlines()
                start = next(i for i, line in enumerate(listing) if "file:function" in line)
                for line in listing[start + 2 : start + 2 + args.annotate]:
                    print("  " + line[:150])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
