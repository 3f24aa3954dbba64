"""pemfile: hand PEM text (certificates, private keys) to OpenSSL without a disk file.

Python's ``ssl`` loads key pairs only from paths. Used by :mod:`turnout.dataplane.tls`
(listener certificates) and :mod:`turnout.dataplane.upstream_tls` (client certificates).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def pem_file(pem: str) -> Iterator[str]:
    """A path OpenSSL can read ``pem`` from, gone when the block ends."""
    data = pem.encode("ascii")
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd = memfd_create("turnout-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="turnout-tls-") as directory:
        path = os.path.join(directory, "pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        yield path
