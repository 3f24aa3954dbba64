"""Build hook: compile the data plane's request path to C with mypyc.

Everything else about the package lives in pyproject.toml. The modules in ``COMPILED``
run for every proxied HTTP request; compiled by mypyc (from the same type-annotated
source, checked by mypy --strict) they cost about 40% less interpreter time per request
than when interpreted (bench/request_path_micro.py; see bench/RESULTS.md). The source stays
the reference: ``TURNOUT_PURE_PYTHON=1 pip install ...`` builds without compiling, and a
machine without a C compiler falls back to pure Python with a warning.
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import setup

COMPILED = [
    "src/turnout/dataplane/clienthello.py",
    "src/turnout/dataplane/dispatch.py",
    "src/turnout/dataplane/filters.py",
    "src/turnout/dataplane/forwarding.py",
    "src/turnout/dataplane/h2base.py",
    "src/turnout/dataplane/health.py",
    "src/turnout/dataplane/http1.py",
    "src/turnout/dataplane/http2.py",
    "src/turnout/dataplane/l4.py",
    "src/turnout/dataplane/limits.py",
    "src/turnout/dataplane/messages.py",
    "src/turnout/dataplane/mirror.py",
    "src/turnout/dataplane/passthrough.py",
    "src/turnout/dataplane/policy.py",
    "src/turnout/dataplane/router.py",
    "src/turnout/dataplane/session.py",
    "src/turnout/dataplane/splice.py",
    "src/turnout/dataplane/tls.py",
    "src/turnout/dataplane/tunnel.py",
    "src/turnout/dataplane/udp.py",
    "src/turnout/dataplane/upstream.py",
    "src/turnout/dataplane/upstream_h2.py",
    "src/turnout/dataplane/upstream_tls.py",
    "src/turnout/dataplane/watchdog.py",
]


def remove_compiled() -> None:
    """Delete the modules an earlier editable build left beside the source: a pure build
    (or a failed compile) must not leave stale compiled modules shadowing the source."""
    for pattern in ("src/turnout_native__mypyc*.so", "src/turnout/dataplane/*.so"):
        for path in glob.glob(pattern):
            os.remove(path)


def ext_modules() -> list[object]:
    remove_compiled()
    if os.environ.get("TURNOUT_PURE_PYTHON", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify

        return list(mypycify(COMPILED, opt_level="3", group_name="turnout_native"))
    except (Exception, SystemExit) as exc:  # no compiler or mypyc: the source still works
        print(f"warning: not compiling the request path ({exc}); pure Python", file=sys.stderr)
        return []


setup(ext_modules=ext_modules())
