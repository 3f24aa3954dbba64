"""The fuzz targets (fuzz/) run on their committed seed corpora, without atheris.

This keeps the harnesses working as the code changes (``make fuzz`` is not part of
``make test``), and replays every input a fuzzing run once crashed on: those are kept
in the corpora as ``regress-*`` files.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
TARGETS = ["http1_front", "upstream_response", "manifest", "http2_front", "clienthello"]


@pytest.fixture(scope="module", autouse=True)
def _fuzz_on_path() -> Iterator[None]:
    sys.path.insert(0, str(FUZZ))
    harness = importlib.import_module("_harness")
    undo = harness.install_checks()  # as under atheris: caught callback bugs raise
    yield
    undo()
    harness.close_loop()
    sys.path.remove(str(FUZZ))


def _inputs(target: str) -> list[Path]:
    return sorted((FUZZ / "corpus" / target).iterdir())


@pytest.mark.parametrize("target", TARGETS)
def test_seed_corpus_runs_clean(target: str) -> None:
    module = importlib.import_module(target)
    inputs = _inputs(target)
    assert len(inputs) >= 5
    for path in inputs:
        module.one_input(path.read_bytes())


def test_regression_inputs_are_kept() -> None:
    assert any(p.name.startswith("regress-") for t in TARGETS for p in _inputs(t))


@pytest.mark.parametrize(
    ("target", "data"),
    [
        ("http1_front", b""),
        ("http1_front", b"\x07\x01\x01\x01\x01\x01\x01\x01GET /api HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("upstream_response", b""),
        ("upstream_response", b"\x01HTTP/1.1 200 OK\r\n\r\n"),
        ("manifest", b""),
        ("manifest", b"{"),
        ("manifest", b"\xff\xfe"),
        ("http2_front", b""),
        ("http2_front", b"\x08"),  # the preface and an empty SETTINGS, then nothing
        ("http2_front", b"\x01\x00"),  # the preface cut after its first byte
        ("clienthello", b""),
        ("clienthello", b"\x16\x03"),
    ],
)
def test_edge_inputs(target: str, data: bytes) -> None:
    importlib.import_module(target).one_input(data)


def test_a_broken_harness_check_is_a_crash() -> None:
    # The targets must be able to fail: a response the proxy never sends is refused.
    harness = importlib.import_module("_harness")
    transport = harness.FakeTransport()
    with pytest.raises(AssertionError):
        harness.check_client_output(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n", transport)
    with pytest.raises(AssertionError):
        harness.check_client_output(b"HTTP/1.1 400 Bad\r\ncontent-length: 0\r\n\r\n", transport)


def test_the_h2_output_check_can_fail() -> None:
    # ServerOutput refuses what a client could not read: frames before the SETTINGS
    # preface, DATA before a response head, a response on a stream the client never opened.
    target = importlib.import_module("http2_front")
    settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    data = b"\x00\x00\x02\x00\x01\x00\x00\x00\x01ok"  # DATA, END_STREAM, stream 1
    head = b"\x00\x00\x01\x01\x04\x00\x00\x00\x01\x88"  # HEADERS :status 200, stream 1
    target.ServerOutput().feed(settings + head + data, 1)
    for wrong, highest in ((data, 1), (settings + data, 1), (settings + head, 0)):
        with pytest.raises(AssertionError):
            target.ServerOutput().feed(wrong, highest)


def test_the_clienthello_check_can_fail() -> None:
    target = importlib.import_module("clienthello")
    with pytest.raises(AssertionError):
        target._check_hello(target.ClientHello("a..b"))
    target._check_hello(target.ClientHello("a.b-c_d"))
