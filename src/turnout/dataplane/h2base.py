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
"""

from __future__ import annotations

from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, Event
from h2.settings import SettingCodes, Settings
from hyperframe.frame import Frame, GoAwayFrame

from turnout.dataplane.filters import Header, HeaderEdit
from turnout.dataplane.messages import HOP_BY_HOP

Headers = list[tuple[bytes, bytes]]

# Sent to peers in SETTINGS: streams above it are refused with REFUSED_STREAM.
MAX_CONCURRENT_STREAMS = 100
# Receive windows: what a peer may send before we acknowledge (that is, before we wrote
# it onward); the connection window bounds what all streams together can buffer here.
STREAM_WINDOW = 256 * 1024
CONNECTION_WINDOW = 1024 * 1024
MAX_FRAME_SIZE = 16384

# RFC 9113 8.2.2: connection-specific fields are not sent over HTTP/2 ("te: trailers" is
# the one exception, added back where the peer needs it).
_CONNECTION_SPECIFIC = HOP_BY_HOP | {b"host"}


class Connection(H2Connection):
    """An h2 connection whose GOAWAY (sent or received, NO_ERROR) lets open streams finish."""

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
