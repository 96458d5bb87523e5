"""The dashboard's data carries each plant's verifier key and newest checkpoint."""

from __future__ import annotations

import base64
from pathlib import Path

from heliod.daemon.boot.settings import http_settings
from heliod.daemon.read.dashboard import dashboard_data
from heliod.rewards.tlog.verify import open_note, parse_checkpoint, parse_vkey
from tests.daemon.ledger_fixture import make_ledger, now_us


def test_log_block_with_the_newest_checkpoint(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path)
    ledger.produce("alpha", 2)
    plants = http_settings(ledger.config).plants
    data = {p["id"]: p for p in dashboard_data(ledger.store, plants, now_us())["plants"]}
    alpha, beta = data["alpha"]["log"], data["beta"]["log"]
    assert alpha["origin"] == "heliod/alpha"
    name, key = parse_vkey(alpha["vkey"])
    origin, size, root = parse_checkpoint(open_note(alpha["checkpoint"], name, key))
    assert (origin, size, alpha["tree_size"]) == ("heliod/alpha", 2, 2)
    assert alpha["root"] == base64.b64encode(root).decode()
    assert (beta["checkpoint"], beta["tree_size"], beta["root"]) == (None, 0, None)
    assert beta["vkey"].startswith("heliod/beta+")
    ledger.store.close()
