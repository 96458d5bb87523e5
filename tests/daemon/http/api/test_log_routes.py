"""The log routes (docs/verification.md) over what the real accountant committed: a
bundle fetched from the API verifies with the verifier fetched from GET /verify.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from heliod.daemon.http.api.app import API_PREFIX
from heliod.rewards.tlog.verify import parse_checkpoint, split_note
from tests.daemon.http.api.conftest import AUTH, build_app
from tests.daemon.ledger_fixture import Ledger

ROOT = Path(__file__).resolve().parents[4]


def test_key_checkpoint_entries_consistency_and_proof(ledger: Ledger, tmp_path: Path) -> None:
    with TestClient(build_app(ledger)) as client:
        key = client.get(f"{API_PREFIX}/plants/alpha/log/key", headers=AUTH).json()
        assert key["origin"] == "heliod/alpha"
        assert key["vkey"].startswith("heliod/alpha+")
        answer = client.get(f"{API_PREFIX}/plants/alpha/log/checkpoint", headers=AUTH)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        text, signatures = split_note(answer.text)
        assert parse_checkpoint(text)[:2] == ("heliod/alpha", 3)
        assert signatures[0][0] == "heliod/alpha"
        page = client.get(
            f"{API_PREFIX}/plants/alpha/log/entries", params={"from": 1, "limit": 1}, headers=AUTH
        ).json()
        assert [i["index"] for i in page["items"]] == [1]
        assert page["items"][0]["leaf"]["mwh_index"] == 2
        assert page["next"] == 2
        proof = client.get(
            f"{API_PREFIX}/plants/alpha/log/consistency", params={"from": 1}, headers=AUTH
        ).json()
        assert (proof["from"], proof["to"], len(proof["proof"])) == (1, 3, 2)
        # Errors: a size the log never had, an empty log, a bad limit, an unknown plant.
        for path, params, status in [
            ("/plants/alpha/log/consistency", {"from": 4}, 404),
            ("/plants/alpha/log/consistency", {"from": 0}, 400),
            ("/plants/alpha/log/entries", {"limit": 1001}, 400),
            ("/plants/beta/backers/dave/proof", {"since": 9}, 404),
            ("/plants/nope/log/key", {}, 404),
            ("/plants/alpha/backers/a%20b/proof", {}, 400),
        ]:
            answer = client.get(f"{API_PREFIX}{path}", params=params, headers=AUTH)
            assert answer.status_code == status, (path, answer.text)
            assert set(answer.json()) == {"error"}
        assert client.get(f"{API_PREFIX}/plants/alpha/log/key").status_code == 401
        assert client.get(f"{API_PREFIX}/plants/alpha/backers/bob/proof").status_code == 401

        bundle = client.get(
            f"{API_PREFIX}/plants/alpha/backers/bob/proof", params={"since": 1}, headers=AUTH
        )
        assert bundle.status_code == 200
        verifier = client.get("/verify.py")  # no token
        assert verifier.status_code == 200
        assert verifier.content == (ROOT / "rewards" / "tlog" / "verify.py").read_bytes()
    (tmp_path / "bundle.json").write_text(bundle.text)
    (tmp_path / "verify.py").write_bytes(verifier.content)
    (tmp_path / "old.note").write_text(json.loads(bundle.text)["checkpoint"])
    run = subprocess.run(
        [
            sys.executable,
            "-I",
            "verify.py",
            "bundle.json",
            "--key",
            key["vkey"],
            "--previous",
            "old.note",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "bob" in run.stdout


def test_a_stored_leaf_that_does_not_parse_is_a_json_error(ledger: Ledger) -> None:
    with ledger.store.write() as conn:
        conn.exec_driver_sql("UPDATE log_leaves SET leaf = '{not json' WHERE plant = 'alpha'")
    with TestClient(build_app(ledger), raise_server_exceptions=False) as client:
        answer = client.get(f"{API_PREFIX}/plants/alpha/backers/bob/proof", headers=AUTH)
    assert answer.status_code == 500
    assert answer.json() == {
        "error": "internal error: the answer could not be built; see the daemon's log"
    }
