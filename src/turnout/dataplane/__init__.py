"""dataplane: serves traffic as described by the IR (HTTP, HTTPS, TCP, TLS, UDP listeners).

Place in the pipeline: last stage -- ``ir.Config`` -> :class:`DataPlane.apply` ->
compiled routing tables (:mod:`.router`) executed per request by the HTTP/1.1 proxy
(:mod:`.http1`, :mod:`.upstream`, :mod:`.messages`, :mod:`.filters`); clients that speak
HTTP/2 are handed to :mod:`.http2` (its streams, :mod:`.h2stream`, routed the same way),
and h2c backends are reached through :mod:`.upstream_h2` (both built on :mod:`.h2base`).
TCP, TLS and UDP listeners are served by :mod:`.l4` (:mod:`.splice`, :mod:`.passthrough`,
:mod:`.clienthello`, :mod:`.udp`). Imports only ``turnout.ir``, the standard library,
uvloop, httptools, h2 and re2.

Most modules here are compiled to C with mypyc when installed (see ``setup.py`` and
:mod:`.native`); ``TURNOUT_PURE_PYTHON=1`` runs them from source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from turnout.dataplane import native

if native.pure_requested():  # before any other module of the package is imported
    native.install_source_finder()

if TYPE_CHECKING:
    from turnout.dataplane.server import DataPlane

__all__ = ["DataPlane"]


def __getattr__(name: str) -> Any:
    # DataPlane on first use (PEP 562): importing a light submodule (limits, worker's
    # messages) must not import every server, as the control plane does at start-up.
    if name == "DataPlane":
        from turnout.dataplane.server import DataPlane

        return DataPlane
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
