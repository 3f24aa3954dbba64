"""h2base: what both HTTP/2 sides of the proxy share -- the h2 connection and header helpers.

Place in the pipeline: :mod:`turnout.dataplane.http2` and its streams in
:mod:`turnout.dataplane.h2stream` (clients talking HTTP/2 to the gateway) and
:mod:`turnout.dataplane.upstream_h2` (the gateway talking h2c to backends) both drive a
sans-IO :class:`Connection` from the ``h2`` library.

Why a subclass of ``h2.connection.H2Connection``: h2 moves its connection state machine to
CLOSED on *any* GOAWAY, sent or received, and from then on refuses every frame -- so the
streams the GOAWAY promised to finish (RFC 9113 6.8, "graceful shutdown") could not
finish. :class:`Connection` reports a received GOAWAY with NO_ERROR as an event but keeps
the connection open, and :meth:`Connection.goaway_frame` builds a GOAWAY to send without
closing it; the owner then refuses new streams itself.

It also bounds what h2 keeps for the life of a connection, which a long-lived connection
(a browser's, a gRPC channel, ours to an h2c backend) would otherwise grow stream after
stream: how closed streams ended (:data:`CLOSED_STREAMS_PER_STREAM`), and the HPACK table
of our encoder (:data:`MAX_ENCODER_TABLE`). tests/dataplane/test_leaks_http2.py measures
both.
"""

from __future__ import annotations

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, Event
from h2.settings import SettingCodes, Settings
from hyperframe.frame import Frame, GoAwayFrame, SettingsFrame

from turnout.dataplane.filters import Header, HeaderEdit
from turnout.dataplane.messages import HOP_BY_HOP

Headers = list[tuple[bytes, bytes]]

# Sent to peers in SETTINGS: streams above it are refused with REFUSED_STREAM.
MAX_CONCURRENT_STREAMS = 100
# Streams we open at most at once on one connection to a backend, whatever more it allows.
MAX_UPSTREAM_STREAMS = 1000
# h2 remembers how each closed stream ended, so that a frame the peer sent before it
# learnt of the close (its DATA or trailers crossing our RST_STREAM) is a stream error,
# not a connection error. By default it keeps 2**16 of them, about 100 bytes each: 6.5 MB
# held by every connection that has served that many streams, for as long as it lives.
# Frames can be in flight only on streams closed within the last round trip, and no more
# streams than can be open at once can close in it; remembering twice that many is ample.
CLOSED_STREAMS_PER_STREAM = 2
# The largest HPACK dynamic table our encoder uses (nghttp2's default), however large a
# table the peer's SETTINGS_HEADER_TABLE_SIZE allows (up to 4 GiB). h2 would use all of
# it: every response field value never sent before on the connection (a request id, a
# Date, a cookie) would be added and kept until the table is full. RFC 7541 4.2 lets an
# encoder use less than the peer allows.
MAX_ENCODER_TABLE = 4096
# Receive windows: what a peer may send before we acknowledge (that is, before we wrote
# it onward); the connection window bounds what all streams together can buffer here.
STREAM_WINDOW = 256 * 1024
CONNECTION_WINDOW = 1024 * 1024
MAX_FRAME_SIZE = 16384

# RFC 9113 8.2.2: connection-specific fields are not sent over HTTP/2 ("te: trailers" is
# the one exception, added back where the peer needs it).
_CONNECTION_SPECIFIC = HOP_BY_HOP | {b"host"}


class Connection(H2Connection):
    """An h2 connection whose GOAWAY (sent or received, NO_ERROR) lets open streams finish,
    and whose memory does not grow with the streams it served (see the module docstring).

    ``concurrent_streams`` is the most streams open at once on it.
    """

    def __init__(
        self, config: H2Configuration, *, concurrent_streams: int = MAX_CONCURRENT_STREAMS
    ) -> None:
        self.MAX_CLOSED_STREAMS = CLOSED_STREAMS_PER_STREAM * concurrent_streams  # read by h2
        super().__init__(config=config)

    def _receive_settings_frame(self, frame: SettingsFrame) -> tuple[list[Frame], list[Event]]:
        # Also for the settings of an h2c Upgrade (initiate_upgrade_connection).
        size = frame.settings.get(SettingCodes.HEADER_TABLE_SIZE)
        if size is not None and size > MAX_ENCODER_TABLE:
            frame.settings[SettingCodes.HEADER_TABLE_SIZE] = MAX_ENCODER_TABLE
        return super()._receive_settings_frame(frame)

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list[Frame], list[Event]]:
        if frame.error_code != 0:
            return super()._receive_goaway_frame(frame)
        event = ConnectionTerminated()
        event.error_code = ErrorCodes.NO_ERROR
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]

    def goaway_frame(self, last_stream_id: int) -> bytes:
        """A GOAWAY (NO_ERROR) to write after ``data_to_send()``; the connection stays open."""
        frame = GoAwayFrame(stream_id=0, last_stream_id=last_stream_id, error_code=0)
        return bytes(frame.serialize())

    def enforce_streams_ourselves(self) -> None:
        """Keep advertising MAX_CONCURRENT_STREAMS but let h2 accept more streams.

        h2 treats a stream over the limit as a connection error; RFC 9113 5.1.2 allows (and
        peers expect) a stream error, REFUSED_STREAM, which the owner sends. Call after
        the SETTINGS frame carrying the limit has been produced.
        """
        advertised = self.local_settings
        values = {SettingCodes(code): advertised[code] for code in advertised}
        values[SettingCodes.MAX_CONCURRENT_STREAMS] = 2**31 - 1
        self.local_settings = Settings(client=self.config.client_side, initial_values=values)


def response_fields(
    status: int, raw: Headers, edits: tuple[HeaderEdit, ...]
) -> tuple[Headers, bool]:
    """An HTTP/1.1 (or HTTP/2) response head as HTTP/2 fields, and whether it is framed.

    Framed means the upstream message has its own end (Content-Length, chunked, or no
    body); an unframed one ends when the upstream connection closes.
    """
    framed = False
    drop: set[bytes] | None = None
    triples: list[Header] = []
    for name, value in raw:
        lname = name.lower()
        if lname == b"content-length" or lname == b"transfer-encoding":
            framed = True
        if lname == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            drop = tokens if drop is None else drop | tokens
        if lname in _CONNECTION_SPECIFIC or lname[:1] == b":":
            continue
        triples.append((lname, lname, value))
    if drop:
        triples = [h for h in triples if h[0] not in drop]
    for edit in edits:
        triples = edit.apply(triples)
    fields: Headers = [(b":status", b"%d" % status)]
    fields += [(lname, value) for lname, _name, value in triples]
    return fields, framed
