"""Events h2 hands over after it already closed what they refer to, within the same read.

h2 parses a whole read before its events are handled. Found by fuzz/http2_front.py:

* a client's GOAWAY with an error code: h2 closes the connection on it, so answering a
  request read before it (or sending DATA a WINDOW_UPDATE before it allowed) raised
  ProtocolError inside the callback -- logged as a bug, once per such client;
* a RST_STREAM after a request (or a WINDOW_UPDATE) on the same stream: answering it
  raised StreamIDTooLowError / StreamClosedError the same way.

Writing these tests showed one more: a GOAWAY *without* an error after the last request,
in the same read, closed the connection before the answer h2 had queued was written
(close() did not flush while a read was being handled).
"""

from __future__ import annotations

import logging

import h2.errors
import h2.settings
import pytest
from hyperframe.frame import GoAwayFrame, RstStreamFrame, WindowUpdateFrame

from tests.dataplane.test_http2_protocol import Peer


def _goaway(code: h2.errors.ErrorCodes) -> bytes:
    return bytes(GoAwayFrame(0, last_stream_id=0, error_code=code).serialize())


@pytest.mark.parametrize("with_request", [True, False])
def test_goaway_with_an_error_in_the_same_read_drops_the_connection_quietly(
    with_request: bool, caplog: pytest.LogCaptureFixture
) -> None:
    peer = Peer()
    peer.start()
    if with_request:
        peer.request("/direct")  # answered locally (404) while the read is handled
    sent = peer.h2.data_to_send() + _goaway(h2.errors.ErrorCodes.PROTOCOL_ERROR)
    with caplog.at_level(logging.ERROR, logger="turnout"):
        peer.transport.protocol.data_received(sent)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert peer.transport.aborted
    assert not peer.transport.take()  # nothing can follow the client's GOAWAY


def test_goaway_with_an_error_after_a_window_update_that_would_release_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = Peer()
    peer.h2.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
    )
    peer.start()
    stream_id = peer.request("/direct")
    peer.send()  # the 404's head goes out, its body waits for the stream window
    assert peer.response(stream_id)[b":status"] == b"404"
    server = peer.transport.protocol
    assert server.streams[stream_id].pending
    opened = bytes(WindowUpdateFrame(stream_id, window_increment=1000).serialize())
    with caplog.at_level(logging.ERROR, logger="turnout"):
        server.data_received(opened + _goaway(h2.errors.ErrorCodes.INTERNAL_ERROR))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert peer.transport.aborted and not server.open


def test_goaway_without_an_error_still_lets_streams_finish() -> None:
    peer = Peer()
    peer.start()
    stream_id = peer.request("/direct")
    sent = peer.h2.data_to_send() + _goaway(h2.errors.ErrorCodes.NO_ERROR)
    peer.transport.protocol.data_received(sent)
    peer.receive()
    assert peer.response(stream_id)[b":status"] == b"404"
    assert not peer.transport.aborted


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def _rst(stream_id: int) -> bytes:
    return bytes(RstStreamFrame(stream_id, error_code=h2.errors.ErrorCodes.CANCEL).serialize())


def test_a_request_reset_in_the_same_read_is_not_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = Peer()
    peer.start()
    reset = peer.request("/direct", end=False)  # a local answer, were it still open
    sent = peer.h2.data_to_send() + _rst(reset)
    peer.h2.reset_stream(reset)  # keeps the client's view in step
    peer.h2.data_to_send()
    after = peer.request("/direct")
    with caplog.at_level(logging.ERROR, logger="turnout"):
        peer.transport.protocol.data_received(sent + peer.h2.data_to_send())
        peer.receive()
    assert not _errors(caplog)
    assert not peer.of(h2.events.ResponseReceived, reset)
    assert peer.response(after)[b":status"] == b"404"  # the connection carries on
    assert not peer.transport.aborted and not peer.transport.closed


def test_a_window_update_then_a_reset_in_the_same_read_sends_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = Peer()
    peer.h2.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
    )
    peer.start()
    stream_id = peer.request("/direct")
    peer.send()  # the 404's head goes out, its body waits for the stream window
    server = peer.transport.protocol
    assert server.streams[stream_id].pending
    opened = bytes(WindowUpdateFrame(stream_id, window_increment=1000).serialize())
    with caplog.at_level(logging.ERROR, logger="turnout"):
        server.data_received(opened + _rst(stream_id))
    assert not _errors(caplog)
    assert not peer.transport.take()  # no DATA on the reset stream
    assert not server.streams and server.open
