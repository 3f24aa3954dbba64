"""In-process cost of a Gateway change at N routes: ``Pipeline.compile`` and status.

What ``python bench/scale.py --change gateway`` measures end to end (file written ->
new listener served), without the watcher, the data plane and the machine's
scheduling: the bench's manifests (``bench/manifests.py``: one Gateway, N HTTPRoutes),
then a listener added to the Gateway and removed again, ``--repeat`` times. Each change
is compiled from the changed file only, as the watcher reports it, with the cyclic
garbage collector paused (as ``turnout run`` does during a reload). Prints the min and
median of compile, status and their sum; ``--profile`` adds a cProfile of one more
change.

    python bench/gateway_change.py --routes 5000 --repeat 8
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import manifests
from turnout.runtime import Pipeline, RunOptions
from turnout.status.compute import DataPlaneFeedback

EXTRA_LISTENER = """\
    - name: extra
      protocol: HTTP
      port: 8081
      hostname: "extra.bench.test"
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=8, help="changes measured (8)")
    parser.add_argument("--profile", action="store_true", help="cProfile one more change")
    parser.add_argument("--sort", default="cumulative", help="profile order (cumulative)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifests.write_tree(root, args.routes, default_endpoint=("127.0.0.1", 9))
        pipeline = Pipeline(RunOptions(paths=(root,)))
        started = time.perf_counter()
        loaded, built, _ = pipeline.compile()
        pipeline.status(loaded, built, DataPlaneFeedback(True, {}))
        print(
            f"{args.routes} routes: first compile and status {_ms(time.perf_counter() - started)}"
        )
        base = root / "00-base.yaml"
        original = base.read_text()

        def change(k: int) -> None:
            base.write_text(original.rstrip("\n") + "\n" + EXTRA_LISTENER if k % 2 else original)

        compiles, statuses = [], []
        for k in range(1, args.repeat + 1):
            change(k)
            gc.disable()
            t0 = time.perf_counter()
            loaded, built, _ = pipeline.compile([base])
            t1 = time.perf_counter()
            pipeline.status(loaded, built, DataPlaneFeedback(True, {}))
            t2 = time.perf_counter()
            gc.enable()
            compiles.append(t1 - t0)
            statuses.append(t2 - t1)
        totals = [a + b for a, b in zip(compiles, statuses, strict=True)]
        for label, values in (("compile", compiles), ("status", statuses), ("total", totals)):
            print(
                f"{label:8s} min {_ms(min(values))}  median {_ms(statistics.median(values))}"
                f"  (of {len(values)})"
            )
        if args.profile:
            change(args.repeat + 1)
            gc.disable()
            profile = cProfile.Profile()
            profile.enable()
            loaded, built, _ = pipeline.compile([base])
            pipeline.status(loaded, built, DataPlaneFeedback(True, {}))
            profile.disable()
            gc.enable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(40)
            print(out.getvalue())
    return 0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f} ms"


if __name__ == "__main__":
    sys.exit(main())
