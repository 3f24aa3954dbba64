"""The server-side SSL context type of the data plane, kept apart from tls.py.

``tls.py`` is compiled with mypyc (see setup.py), and mypyc cannot compile a subclass of
``ssl.SSLContext`` that adds an attribute; this module stays interpreted so the class can
carry the listener it serves.
"""

from __future__ import annotations

import ssl


class CertificateContext(ssl.SSLContext):
    """A server context holding one key pair, tagged with the listener it serves."""

    listener: str
