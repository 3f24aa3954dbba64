"""A client's GOAWAY with an error code, read together with requests or window updates.

Found by fuzz/http2_front.py: h2 closes its connection state on such a GOAWAY while it
parses the read, and hands over the events before it; answering a request among them
(or sending DATA a WINDOW_UPDATE among them allowed) then raised ProtocolError inside
the event loop's callback -- logged as a bug, once per such client. Writing the test
showed a second bug: a GOAWAY *without* an error after the last request, in the same read,
closed the connection before the answer h2 had queued was written (close() did not flush
while a read was being handled).
"""

from __future__ import annotations

import logging

import h2.errors
import h2.settings
import pytest
from hyperframe.frame import GoAwayFrame, WindowUpdateFrame

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
