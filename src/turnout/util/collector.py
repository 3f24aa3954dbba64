"""When the cyclic garbage collector runs during a reload (standalone mode).

Why this exists: CPython's full collection walks every tracked object. At 5,000
routes the control plane holds about a million of them (the parsed manifests alone
are most of it), so one full collection takes about a second on a small VM, during
which the event loop, which also serves traffic, stands still. A reload allocates
hundreds of thousands of objects, enough to trigger one or more full collections
in the middle of it (measured: 17 full collections, 9.6 s of a 21 s run of bench
code). Two measures, both sound:

* ``collector_paused``: no automatic collection while a reload computes. Nothing is
  lost; garbage left by the reload is collected by the normal schedule afterwards,
  mostly by cheap young-generation passes.
* ``freeze_loaded``: after the first load, move every object that exists into the
  permanent generation (``gc.freeze``), which later collections do not walk. Those
  objects are the parsed manifests (frozen pydantic models and plain dicts/lists
  holding no reference cycles, freed by reference counting when their file changes)
  and what the process imported. The price is that cyclic garbage alive at that
  moment is never collected: bounded, paid once at startup.
"""

from __future__ import annotations

import gc


class collector_paused:  # lower-case like the contextlib managers it stands beside
    """Disable automatic cyclic collection inside the block (reference counting still
    frees what it can); restore the previous state after it. Usable with ``with`` and
    ``async with`` (a reload awaits the data plane)."""

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *_exc: object) -> None:
        if self._was_enabled:
            gc.enable()

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


def freeze_loaded() -> None:
    """Exclude every object that exists now from all future collections."""
    gc.freeze()
