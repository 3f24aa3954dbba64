"""Build hook: compile the data plane to C with mypyc.

Everything else about the package lives in pyproject.toml. The data-plane modules run
for every proxied request and every connection; compiled by mypyc from the same
type-annotated source that mypy --strict checks, the request path costs about half the
interpreter time (bench/request_path_micro.py; see bench/RESULTS.md). The source stays
the reference (see src/turnout/dataplane/native.py):

* ``TURNOUT_PURE_PYTHON=1`` at build time builds nothing (and removes what an earlier
  editable build left beside the source); at run time it loads the source instead;
* a machine without a C compiler, or a mypyc that cannot compile the code, falls back to
  pure Python with a warning (an error with ``TURNOUT_REQUIRE_COMPILED=1``, as ``make
  install`` sets). mypyc needs the dependencies' types: h2 is in the build requirements
  of pyproject.toml for that reason.
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import setup

DATAPLANE = "src/turnout/dataplane"
# Interpreted on purpose: start-up and process plumbing (not per request), the switch
# between compiled and source modules itself, a subclass of ssl.SSLContext that mypyc
# cannot compile, and the msgspec Struct of counter snapshots (built once a second).
INTERPRETED = {
    "__init__.py",
    "native.py",
    "server.py",
    "worker.py",
    "reuse.py",
    "pemfile.py",
    "sslcontext.py",
    "snapshot.py",
}
# mypy's view for compiling: the project's own config is for checking (strict, plugins that
# a build environment need not have); compiling needs only the types, whatever is missing.
MYPY_OPTIONS = ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent"]


def compiled_sources() -> list[str]:
    return sorted(
        path for path in glob.glob(f"{DATAPLANE}/*.py") if os.path.basename(path) not in INTERPRETED
    )


def remove_compiled() -> None:
    """Delete the modules an earlier editable build left beside the source: a pure build
    (or a failed compile) must not leave stale compiled modules shadowing the source."""
    for pattern in ("src/turnout_native__mypyc*.so", f"{DATAPLANE}/*.so"):
        for path in glob.glob(pattern):
            os.remove(path)


def ext_modules() -> list[object]:
    remove_compiled()
    if os.environ.get("TURNOUT_PURE_PYTHON", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify

        return list(
            mypycify(
                [*MYPY_OPTIONS, *compiled_sources()], opt_level="3", group_name="turnout_native"
            )
        )
    except (Exception, SystemExit) as exc:  # no compiler or mypyc: the source still works
        if os.environ.get("TURNOUT_REQUIRE_COMPILED", "") not in ("", "0"):
            raise SystemExit(
                "error: mypyc could not compile the data plane (see above); "
                "TURNOUT_PURE_PYTHON=1 installs the pure-Python data plane"
            ) from exc
        print(
            "warning: not compiling the data plane (mypyc failed, see above); pure Python",
            file=sys.stderr,
        )
        return []


setup(ext_modules=ext_modules())
