"""dataplane: serves traffic as described by the IR (HTTP/1.1 listeners, for now).

Place in the pipeline: last stage -- ``ir.Config`` -> :class:`DataPlane.apply` ->
compiled routing tables (:mod:`.router`) executed per request by the HTTP/1.1 proxy
(:mod:`.http1`, :mod:`.upstream`, :mod:`.messages`, :mod:`.filters`). Imports only
``turnout.ir``, the standard library, uvloop, httptools and re2.
"""

from turnout.dataplane.server import DataPlane

__all__ = ["DataPlane"]
