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


def test_no_command_runs_with_an_empty_platform_secret(tmp_path: Path) -> None:
    """An HMAC over an empty key is one anybody can compute: check-config and run refuse."""
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    base = cfg.read_text()
    cfg.write_text('[platform]\npush_url = "https://p.example/e"\n' + base)
    for command in ("check-config", "run"):
        proc = heliod(cfg, command, timeout=60)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "platform.secret_file: required" in proc.stderr
    secret = tmp_path / "platform.secret"
    secret.write_text("\n")
    cfg.write_text(
        '[platform]\npush_url = "https://p.example/e"\nsecret_file = "platform.secret"\n' + base
    )
    for command in ("check-config", "run"):
        proc = heliod(cfg, command, timeout=60)
        assert proc.returncode == 2, (command, proc.stderr)
        assert f"platform.secret_file: required: {secret} is empty" in proc.stderr
    secret.write_text("s3cret\n")
    assert heliod(cfg, "check-config").returncode == 0
    assert not (tmp_path / "h.db").exists()  # run never got as far as the store
