"""Key pairs for golden scenarios, generated at test time (no private key is committed).

A scenario's Secret names a pair by its DNS names::

    stringData:
      tls.crt: GENERATED-CERT(example.com, *.example.com)
      tls.key: GENERATED-KEY(example.com, *.example.com)

The same names give the same pair within a run, so a CERT and a KEY with the same names
match; different names give a key that does not match. Status never shows PEM bytes,
so out.yaml files stay stable across runs.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import trustme

_PLACEHOLDER = re.compile(r"GENERATED-(CERT|KEY)\(([^)]*)\)")


@functools.cache
def _ca() -> trustme.CA:
    return trustme.CA()


@functools.cache
def _pair(names: tuple[str, ...]) -> tuple[str, str]:
    cert = _ca().issue_cert(*names)
    chain = "".join(pem.bytes().decode() for pem in cert.cert_chain_pems[:1])
    return chain, cert.private_key_pem.bytes().decode()


def _replace(match: re.Match[str]) -> str:
    names = tuple(n.strip() for n in match.group(2).split(",") if n.strip())
    chain, key = _pair(names)
    return json.dumps(chain if match.group(1) == "CERT" else key)


def materialize(in_yaml: Path, tmp: Path) -> Path:
    """``in_yaml``, or a copy in ``tmp`` with generated PEMs in place of placeholders."""
    text = in_yaml.read_text()
    if "GENERATED-" not in text:
        return in_yaml
    out = tmp / in_yaml.name
    out.write_text(_PLACEHOLDER.sub(_replace, text))
    return out
