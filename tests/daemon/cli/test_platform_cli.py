"""`api-token new`, `sync status` and `sync retry` as a user runs them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.helpers_cli import heliod, heliod_json, write_config


def test_api_token_new_prints_a_token_and_its_config_line() -> None:
    proc = heliod(None, "api-token", "new", "platform")
    assert proc.returncode == 0, proc.stderr
    token, *rest = proc.stdout.splitlines()
    digest = re.search(r'sha256 = "([0-9a-f]{64})"', "\n".join(rest))
    assert digest is not None
    assert hashlib.sha256(token.encode()).hexdigest() == digest.group(1)
    assert len(token) >= 32
    other = heliod(None, "api-token", "new", "platform").stdout.splitlines()[0]
    assert other != token


def test_sync_status_and_retry_on_an_empty_outbox(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    status = heliod_json(cfg, "sync", "status")
    assert (status["pending"], status["delivered"], status["rejected"]) == (0, 0, 0)
    assert heliod_json(cfg, "sync", "retry") == {"requeued": 0}
    bad = heliod(cfg, "sync", "retry", "p1:x")
    assert bad.returncode == 2
    assert "not an event id" in bad.stderr
    unknown = heliod(cfg, "sync", "retry", "p1:99")
    assert unknown.returncode == 2
