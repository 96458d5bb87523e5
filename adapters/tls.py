"""One TLS context for every HTTP client of the daemon (the platform's, the InfluxDB export's).

httpx gives each client it makes its own SSL context, loading the CA store (certifi's,
or `SSL_CERT_FILE` / `SSL_CERT_DIR`) again each time: about 1 MB per client, and a
daemon with a platform and the export has three clients. An `ssl.SSLContext` may be
shared by any number of connections and threads, so they share this one, made by httpx's
own function at the first client, with the same certificates a client would load itself.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl


@functools.cache
def shared_context() -> ssl.SSLContext:
    """The context every client passes as `verify` (made once, at the first call)."""
    import httpx  # noqa: PLC0415 - only with a configured HTTP part

    return httpx.create_ssl_context()
