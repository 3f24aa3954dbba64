"""Fuzz target: the first bytes of a TLS connection into turnout.dataplane.clienthello.

parse_client_hello reads what a client sent so far on a TLS listener (SNI routing,
before any decryption). A crash is:

* any outcome but None ("need more"), a ClientHello, or ClientHelloError;
* a prefix parser that changes its mind: a ClientHello for x must be the same
  ClientHello for x + any suffix (the listener calls it again as bytes arrive, and the
  rest of the stream is the client's next records); an error for x must stay an error;
  None for x must not be followed, at a prefix of x, by an error or a ClientHello;
* a server_name RFC 6066 section 3 does not allow (a host name as in DNS: ASCII letters,
  digits, hyphen and dots; no empty label, at most 253 bytes, no trailing dot since
  the absolute form is normalised; lower-case here, as the router compares it).

    python fuzz/clienthello.py [corpus dirs] [libFuzzer flags]
"""

from __future__ import annotations

import re

from _fuzzing import instrumented, main

with instrumented(__name__ == "__main__"):
    from turnout.dataplane.clienthello import ClientHello, ClientHelloError, parse_client_hello

_LABEL = rb"[a-z0-9_-]{1,63}"
# Host names as sent in SNI. Underscores are not in RFC 952 host names, but occur in real
# DNS names and the parser accepts them on purpose; a label is at most 63 bytes (RFC 1035).
_HOST_NAME = re.compile(rb"(?:%s\.)*%s" % (_LABEL, _LABEL))
_SUFFIX = b"\x17\x03\x03\x00\x05hello"  # an application-data record after the hello


def _outcome(data: bytes) -> ClientHello | ClientHelloError | None:
    try:
        result = parse_client_hello(data)
    except ClientHelloError as exc:
        return exc
    if result is not None and not isinstance(result, ClientHello):
        raise AssertionError(f"returned {result!r}")
    return result


def _check_hello(hello: ClientHello) -> None:
    name = hello.server_name
    if name is not None:
        raw = name.encode("ascii", "replace")
        if len(raw) > 253 or not _HOST_NAME.fullmatch(raw):
            raise AssertionError(f"server_name {name!r} is not a host name")
    for protocol in hello.alpn:
        if not isinstance(protocol, bytes) or not 1 <= len(protocol) <= 255:
            raise AssertionError(f"ALPN protocol {protocol!r}")


def one_input(data: bytes) -> None:
    outcome = _outcome(data)
    if isinstance(outcome, ClientHello):
        _check_hello(outcome)
        for suffix in (_SUFFIX, data[:7], b"\x00" * 5):
            again = _outcome(data + suffix)
            if again != outcome:
                raise AssertionError(f"{outcome} became {again!r} with {suffix!r} after it")
    elif isinstance(outcome, ClientHelloError):
        again = _outcome(data + _SUFFIX)
        if not isinstance(again, ClientHelloError):
            raise AssertionError(f"an error ({outcome}) became {again!r} with more bytes")
    # Prefixes: while more is needed no prefix may be final; the input's own cut points
    # are enough (the fuzzer varies the length itself).
    if outcome is None:
        for cut in range(len(data)):
            if _outcome(data[:cut]) is not None:
                raise AssertionError(f"the prefix of {cut} bytes is final, the whole is not")


if __name__ == "__main__":
    main(one_input)
