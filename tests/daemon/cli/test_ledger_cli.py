"""The ledger commands, run as a user runs them, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.helpers_cli import heliod, heliod_json, readings_csv, write_config

T0 = datetime(2021, 6, 1, 8, 0, tzinfo=UTC)


def ts(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def cfg(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path, db_url, decimals=0, tokens="1")


def test_three_equal_backers_over_seven_mwh(cfg: Path, tmp_path: Path) -> None:
    """The contract's example: U = 1, three equal backers, 7 MWh."""
    (tmp_path / "b.csv").write_text("backer,amount\na,100\nb,100\nc,100\n")
    assert (
        heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv")).returncode == 0
    )
    # 100 kWh per minute is within 250 kW × 1.2 over 60 s (= 5 kWh)? No: use 4 kWh steps.
    rows = [(ts(i), str(4000 * i)) for i in range(1752)]  # 7.004 MWh after the baseline
    readings_csv(tmp_path / "r.csv", rows)
    proc = heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r.csv"))
    assert proc.returncode == 0, proc.stderr
    out = heliod_json(cfg, "account")
    assert [m["mwh_index"] for m in out["mints"]] == [1, 2, 3, 4, 5, 6, 7]
    export = heliod_json(cfg, "ledger", "export")
    per_mint = [{c["backer"]: c["units"] for c in m["credits"]} for m in export["mints"]]
    assert [p.get("a", 0) for p in per_mint] == [0, 0, 1, 0, 0, 1, 0]
    assert [m["undistributed_units"] for m in export["mints"]] == [1, 2, 0, 1, 2, 0, 1]
    bal = heliod_json(cfg, "balances")
    assert bal[0]["undistributed"] == {"units": 1, "amount": "1"}
    assert {b["backer"]: b["units"] for b in bal[0]["balances"]} == {"a": 2, "b": 2, "c": 2}
    assert heliod(cfg, "ledger", "verify").returncode == 0


def test_account_is_idempotent_and_verify_catches_tampering(
    cfg: Path, tmp_path: Path, db_url: str
) -> None:
    (tmp_path / "b.csv").write_text("backer,amount\na,500\nb,300\nc,200\n")
    heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv"))
    readings_csv(tmp_path / "r.csv", [(ts(i), str(4000 * i)) for i in range(760)])
    heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r.csv"))
    first = heliod_json(cfg, "account")
    assert len(first["mints"]) == 3
    again = heliod_json(cfg, "account")
    assert again["mints"] == []
    assert heliod(cfg, "ledger", "verify").returncode == 0
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE credits SET units = '7' WHERE id = (SELECT MIN(id) FROM credits)")
        )
    engine.dispose()
    proc = heliod(cfg, "ledger", "verify")
    assert proc.returncode == 1
    assert "credits differ" in proc.stderr or "entitled" in proc.stderr


def test_backer_joining_after_mwh_two(cfg: Path, tmp_path: Path) -> None:
    # One MWh every 250 minutes (4 kWh/min); MWh 2 completes at minute 501 (P's timestamp).
    (tmp_path / "b.csv").write_text(f"backer,amount,valid_from\na,1,\nb,1,\nc,2,{ts(600)}\n")
    heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv"))
    readings_csv(tmp_path / "r.csv", [(ts(i), str(4000 * i)) for i in range(1003)])
    heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r.csv"))
    assert len(heliod_json(cfg, "account")["mints"]) == 4
    export = heliod_json(cfg, "ledger", "export")
    per_mint = [{c["backer"]: c["units"] for c in m["credits"]} for m in export["mints"]]
    # U = 1. Mints 1, 2: a and b hold 1/2 each: A = 1/2, 1 → credits 0 then 1 each.
    # Mints 3, 4: a, b 1/4 and c 1/2: A_a = 5/4, 3/2 → 0, 0; A_c = 1/2, 1 → 0, 1.
    assert per_mint == [{}, {"a": 1, "b": 1}, {}, {"c": 1}]
    assert [m["undistributed_units"] for m in export["mints"]] == [1, 0, 1, 1]


def test_malformed_register_is_refused_whole(cfg: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "backer,amount,valid_from\nalice,500,\nbob,lots,\ncarol,-1,\n,3,\ndan,1,yesterday\n"
    )
    proc = heliod(cfg, "backers", "import", "--plant", "p1", str(bad))
    assert proc.returncode == 2
    assert "line 3: amount: not a decimal number: 'lots'" in proc.stderr
    assert "line 4: amount: must be 0..10^15 with at most 9 decimal places, got -1" in proc.stderr
    assert "line 5: backer: not a valid backer id" in proc.stderr
    assert "line 6: valid_from: not an RFC 3339 time" in proc.stderr
    listed = heliod_json(cfg, "backers", "list", "--plant", "p1")
    assert listed["backers"] == []  # alice's valid row was not imported either


def test_unknown_backer_and_header_errors(cfg: Path, tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("backer,amount\nghost,0\n")
    proc = heliod(cfg, "backers", "import", "--plant", "p1", str(f))
    assert proc.returncode == 2
    assert "unknown backer 'ghost'" in proc.stderr
    f.write_text("name,amount\nx,1\n")
    proc = heliod(cfg, "backers", "import", "--plant", "p1", str(f))
    assert proc.returncode == 2
    assert "header must be backer,amount,[valid_from]" in proc.stderr
    proc = heliod(cfg, "backers", "import", "--plant", "nope", str(f))
    assert proc.returncode == 2
    assert "unknown plant 'nope'" in proc.stderr


def test_register_import_is_idempotent_and_corrections_apply_later(
    cfg: Path, tmp_path: Path
) -> None:
    f = tmp_path / "b.csv"
    f.write_text("backer,amount\na,1.50\nb,1.5\n")
    first = heliod_json(cfg, "backers", "import", "--plant", "p1", str(f))
    second = heliod_json(cfg, "backers", "import", "--plant", "p1", str(f))
    assert (first["added"], second["added"], second["unchanged"]) == (2, 0, 2)
    listed = heliod_json(cfg, "backers", "list", "--plant", "p1")
    assert [(b["backer"], b["share"]) for b in listed["backers"]] == [
        ("a", json.loads("0.500000000000")),
        ("b", json.loads("0.500000000000")),
    ]


def test_malformed_readings_are_refused_whole(cfg: Path, tmp_path: Path) -> None:
    f = tmp_path / "r.csv"
    f.write_text(
        f"timestamp,energy_wh\n{ts(0)},100\n{ts(1)},1e\nnot-a-time,5\n{ts(3)}\n"
        f"{ts(4)},1e999999999\n"
    )
    proc = heliod(cfg, "readings", "import", "--device", "inv1", str(f))
    assert proc.returncode == 2
    assert "line 3: energy_wh: not a number: '1e'" in proc.stderr
    assert "line 4: timestamp: not an RFC 3339 time" in proc.stderr
    assert "line 5: 1 columns, expected 2" in proc.stderr
    assert "line 6: energy_wh: must be -10^18..10^18, got 1E+999999999" in proc.stderr
    assert heliod_json(cfg, "account")["readings"] == 0


def test_rejected_readings_are_counted_not_accounted(cfg: Path, tmp_path: Path) -> None:
    future = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    f = readings_csv(
        tmp_path / "r.csv",
        [
            (ts(0), "100"),
            (ts(1), "200"),
            (ts(1), "250"),
            (ts(0.5), "300"),
            (ts(2), "-5"),
            (ts(3), "NaN"),
            (ts(4), "1e16"),
            (future, "400"),
            (ts(5), "300"),
        ],
    )
    out = heliod_json(cfg, "readings", "import", "--device", "inv1", str(f))
    assert out["stored"] == 3
    assert out["rejected_by_reason"] == {
        "timestamp_in_future": 1,
        "timestamp_not_after_last": 2,
        "value_negative": 1,
        "value_not_finite": 1,
        "value_too_large": 1,
    }


def test_quarantined_jump_accepted_completes_mwh_at_decision_time(
    cfg: Path, tmp_path: Path
) -> None:
    (tmp_path / "b.csv").write_text("backer,amount\na,1\n")
    heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv"))
    # 2 MWh in one minute from a 250 kW plant: implausible, quarantined.
    rows = [
        (ts(0), "0"),
        (ts(1), "1000"),
        (ts(2), "2001000"),
        (ts(3), "2002000"),
        (ts(4), "2003000"),
    ]
    readings_csv(tmp_path / "r.csv", rows)
    heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r.csv"))
    assert heliod_json(cfg, "account")["mints"] == []
    items = heliod_json(cfg, "anomalies", "list")
    assert [(i["kind"], i["status"], i["delta_wh"]) for i in items] == [
        ("implausible_jump", "quarantined", json.loads("2000000.000"))
    ]
    proc = heliod(cfg, "anomalies", "accept", str(items[0]["id"]))
    assert proc.returncode == 2 and "--yes" in proc.stderr  # no terminal, no --yes
    proc = heliod(cfg, "anomalies", "accept", str(items[0]["id"]), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "MWh 1..2" in proc.stdout
    out = heliod_json(cfg, "account")
    assert [m["mwh_index"] for m in out["mints"]] == [1, 2]
    decided = heliod_json(cfg, "anomalies", "list")[0]
    export = heliod_json(cfg, "ledger", "export")
    assert {m["completed_at"] for m in export["mints"]} == {
        decided["decided_at"].replace("+00:00", "Z")
    }
    assert decided["status"] == "accepted"
    assert heliod(cfg, "anomalies", "reject", str(decided["id"])).returncode == 2
    assert heliod(cfg, "ledger", "verify").returncode == 0


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[plants]]\nid = "p1"\nname = "x"\ncapacity_kw = 10\nenergy_devices = ["d"]\n'
        '[plants.reward]\nsymbol = "S"\ntokens_per_mwh = "1"\n'
        '[[plants.devices]]\nid = "d"\nprotocol = "modbus"\nhost = "h"\nport = 70000\n'
    )
    proc = heliod(path, "check-config")
    assert proc.returncode == 2
    assert "plants[0].devices[0].port: must be 1..65535, got 70000" in proc.stderr


def test_fresh_store_verifies_and_lists_nothing(cfg: Path) -> None:
    assert heliod(cfg, "ledger", "verify").returncode == 0
    assert heliod_json(cfg, "balances")[0]["balances"] == []
    assert heliod_json(cfg, "anomalies", "list") == []
    assert heliod_json(cfg, "ledger", "export") == {"mints": []}
    proc = heliod(cfg, "anomalies", "accept", "99", "--yes")
    assert proc.returncode == 2
    assert "no anomaly with id 99" in proc.stderr


def test_weights_keep_every_digit(cfg: Path, tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("backer,amount\na,999999999999999.999999999\nb,1E+15\n")
    imported = heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv"))
    assert imported.returncode == 0, imported.stderr
    listed = heliod(cfg, "backers", "list", "--plant", "p1", "--json")
    assert "999999999999999.999999999" in listed.stdout


def test_amounts_out_of_bounds_refuse_the_file(cfg: Path, tmp_path: Path) -> None:
    """Above 10^15 or past 9 decimal places: exit 2 naming the line, never rounded."""
    (tmp_path / "b.csv").write_text(
        "backer,amount\n"
        "a,100\n"
        "b,1e999999999\n"
        "c,1000000000000000.5\n"
        "d,1234567890.12345678901234567890123\n"
        "e,0.0000000001\n"
    )
    proc = heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    range_text = "must be 0..10^15 with at most 9 decimal places"
    assert f"line 3: amount: {range_text}, got 1E+999999999" in proc.stderr
    assert f"line 4: amount: {range_text}, got 1000000000000000.5" in proc.stderr
    assert "line 5: amount: has more than 9 decimal places" in proc.stderr
    assert "line 6: amount: has more than 9 decimal places, got 1E-10" in proc.stderr
    assert heliod_json(cfg, "backers", "list", "--plant", "p1")["backers"] == []


def test_accepted_jump_energy_is_placed_at_its_reading(
    cfg: Path, tmp_path: Path, db_url: str
) -> None:
    """Each Δ is placed at its P's timestamp, even when a decision released it later."""
    rows = [(ts(0), "0"), (ts(1), "1000"), (ts(2), "2001000"), (ts(3), "2002000")]
    readings_csv(tmp_path / "r.csv", rows)
    for args in (("readings", "import", "--device", "inv1", str(tmp_path / "r.csv")), ("account",)):
        done = heliod(cfg, *args)
        assert done.returncode == 0, done.stderr
    jump = heliod_json(cfg, "anomalies", "list")[0]
    accepted = heliod(cfg, "anomalies", "accept", str(jump["id"]), "--yes")
    assert accepted.returncode == 0, accepted.stderr
    second = heliod_json(cfg, "account")
    assert second["readings"] == 0, second  # nothing new: only the decision is applied
    engine = create_engine(db_url)
    with engine.connect() as conn:
        buckets = dict(conn.execute(text("SELECT start_us, e_mwh FROM energy_buckets")).all())
    engine.dispose()
    p_bucket = int((T0 + timedelta(minutes=2)).timestamp()) * 10**6 // 300_000_000 * 300_000_000
    assert buckets == {p_bucket: 1_000_000 + 2_000_000_000}  # r1→r2 (1 Wh) and the jump


def test_verify_after_raw_readings_are_pruned(cfg: Path, tmp_path: Path, db_url: str) -> None:
    """Once retention pruned readings, verify replays from a stored checkpoint."""
    from heliod.adapters.store import Store
    from heliod.adapters.store.retention import prune

    (tmp_path / "b.csv").write_text("backer,amount\na,1\nb,2\n")
    heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv"))
    readings_csv(tmp_path / "r1.csv", [(ts(i), str(4000 * i)) for i in range(600)])
    heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r1.csv"))
    assert len(heliod_json(cfg, "account")["mints"]) == 2
    store = Store.open(db_url)
    assert prune(store, before_us=10**18, consumers=["accountant"]).readings > 0
    store.close()
    assert heliod(cfg, "ledger", "verify").returncode == 0
    readings_csv(tmp_path / "r2.csv", [(ts(i), str(4000 * i)) for i in range(600, 1300)])
    heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r2.csv"))
    assert len(heliod_json(cfg, "account")["mints"]) == 3
    proc = heliod(cfg, "ledger", "verify")
    assert proc.returncode == 0, proc.stderr
    # The replay from the checkpoint is real: a tampered mint time after pruning is caught.
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE mints SET completed_at_us = completed_at_us + 1 WHERE mwh_index = 5")
        )
    engine.dispose()
    assert heliod(cfg, "ledger", "verify").returncode == 1


def test_verify_checks_both_energy_rollups_against_e(
    cfg: Path, tmp_path: Path, db_url: str
) -> None:
    """The 5-minute buckets and the hourly sums each add up to the accounted energy E."""
    readings_csv(tmp_path / "r.csv", [(ts(i), str(3000 * i)) for i in range(200)])
    heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r.csv"))
    heliod(cfg, "account")
    assert heliod(cfg, "ledger", "verify").returncode == 0
    engine = create_engine(db_url)
    with engine.connect() as conn:
        hourly = conn.execute(text("SELECT start_us, e_mwh FROM energy_hourly")).all()
    # 198 deltas of 3 Wh at one-minute readings: E spread over the hours they fall in.
    assert sum(e for _, e in hourly) == 198 * 3000 * 1000
    assert len(hourly) >= 3
    for table, words in (("energy_hourly", "hourly energy holds"), ("energy_buckets", "buckets")):
        with engine.begin() as conn:
            conn.execute(
                text(
                    f"UPDATE {table} SET e_mwh = e_mwh + 1 WHERE start_us = "
                    f"(SELECT MIN(start_us) FROM {table})"
                )
            )
        proc = heliod(cfg, "ledger", "verify")
        assert proc.returncode == 1
        assert words in proc.stderr and f"E is {198 * 3000 * 1000}" in proc.stderr
        with engine.begin() as conn:
            conn.execute(
                text(
                    f"UPDATE {table} SET e_mwh = e_mwh - 1 WHERE start_us = "
                    f"(SELECT MIN(start_us) FROM {table})"
                )
            )
    engine.dispose()
    assert heliod(cfg, "ledger", "verify").returncode == 0


def test_balances_list_every_backer_in_force_at_a_mint_zeros_included(
    cfg: Path, tmp_path: Path, db_url: str
) -> None:
    """One row per backer in force at some mint, zero balances included; a backer whose
    share starts after every mint, or was stored after it, is no holder yet."""
    (tmp_path / "b.csv").write_text(
        "backer,amount,valid_from\na,1,\nb,1,\nc,1,\nz,5,2100-01-01T00:00:00Z\n"
    )
    heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv"))
    readings_csv(tmp_path / "r.csv", [(ts(i), str(4000 * i)) for i in range(253)])
    heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r.csv"))
    assert [m["mwh_index"] for m in heliod_json(cfg, "account")["mints"]] == [1]
    (tmp_path / "late.csv").write_text("backer,amount\ny,7\n")
    heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "late.csv"))
    bal = heliod_json(cfg, "balances")[0]
    # U = 1 over three equal shares: nobody reaches a whole unit yet.
    listed = [("a", 0, "0"), ("b", 0, "0"), ("c", 0, "0")]
    assert [(b["backer"], b["units"], b["amount"]) for b in bal["balances"]] == listed
    assert bal["undistributed"] == {"units": 1, "amount": "1"}
    # A ledger from before zero balances were stored gets them back at the next run.
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM balances"))
    engine.dispose()
    assert heliod_json(cfg, "account")["mints"] == []
    bal = heliod_json(cfg, "balances")[0]
    assert [(b["backer"], b["units"], b["amount"]) for b in bal["balances"]] == listed
    assert heliod(cfg, "ledger", "verify").returncode == 0


def test_readings_import_with_influxdb_renders_the_export_lines(
    tmp_path: Path, db_url: str
) -> None:
    """Backfilled readings reach the export like live ones: rendered into the outbox."""
    cfg = write_config(tmp_path, db_url)
    (tmp_path / "influx.token").write_text("t\n")
    cfg.write_text(
        cfg.read_text()
        + '\n[influxdb]\nurl = "http://127.0.0.1:9"\norg = "o"\nbucket = "b"\n'
        + 'token_file = "influx.token"\nbatch_size = 2\n'
    )
    readings_csv(tmp_path / "r.csv", [(ts(i), str(1000 * i)) for i in range(3)])
    proc = heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r.csv"))
    assert proc.returncode == 0, proc.stderr
    with create_engine(db_url).connect() as conn:
        runs = conn.execute(
            text("SELECT after_id, last_id, points, body FROM export_outbox ORDER BY last_id")
        ).all()
    assert [(a, b, n) for a, b, n, _ in runs] == [(0, 2, 2), (2, 3, 1)]  # batch_size each
    at = [int((T0 + timedelta(minutes=i)).timestamp() * 1e6) for i in range(3)]
    assert b"\n".join(bytes(r[3]) for r in runs).decode().splitlines() == [
        f"reading,device=inv1,plant=p1 energy_wh={1000 * i}.000 {at[i]}" for i in range(3)
    ]


def test_json_may_come_before_the_action(cfg: Path, tmp_path: Path) -> None:
    """`heliod backers --json list` and `heliod backers list --json` print the same data."""
    (tmp_path / "b.csv").write_text("backer,amount\na,100\n")
    heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b.csv"))
    at = ("--at", "2030-01-01T00:00:00Z")
    before = heliod(cfg, "backers", "--json", "list", "--plant", "p1", *at)
    after = heliod(cfg, "backers", "list", "--plant", "p1", *at, "--json")
    assert before.returncode == after.returncode == 0, before.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout)
    assert json.loads(before.stdout)["backers"][0]["backer"] == "a"
