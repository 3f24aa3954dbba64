"""collector_paused: no automatic collection inside, the previous state restored after."""

from __future__ import annotations

import gc

import pytest

from turnout.util.collector import collector_paused


def test_paused_inside_and_enabled_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restored_after_an_exception() -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_async_with() -> None:
    async with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
