"""The HTTP clients' shared TLS context (adapters/tls.py): one, and it checks certificates."""

from __future__ import annotations

import ssl

from heliod.adapters.influx import InfluxSettings, InfluxWriter
from heliod.adapters.tls import shared_context


def test_one_context_that_verifies_servers() -> None:
    context = shared_context()
    assert shared_context() is context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # a CA store is loaded


def test_writers_use_it() -> None:
    writers = [InfluxWriter(InfluxSettings("https://127.0.0.1:1", "o", "b")) for _ in range(2)]
    try:
        pools = [w._client._transport._pool for w in writers]  # type: ignore[attr-defined]
        assert all(pool._ssl_context is shared_context() for pool in pools)
    finally:
        for w in writers:
            w.close()
