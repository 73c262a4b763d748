"""The TLS client side of ARI (https://, wss://) and AMI: one way to trust Asterisk's certificate.

Both verify the certificate chain and the host name (the URL's or ``[ami] host``) against the
admin's CA file, or the system's CAs when none is set; there is no switch to skip the check: a
self-signed Asterisk is trusted by naming its certificate (or its CA) as ``ca_file``.
"""

from __future__ import annotations

import ssl


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context; raises OSError or ssl.SSLError when ``ca_file`` is unreadable."""
    return ssl.create_default_context(cafile=ca_file)
