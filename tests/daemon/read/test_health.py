"""/healthz tells the truth: one test per cause of `degraded`, each with its reason.

A real store, the real intake, accountant and health; only the clock is the test's own, so
"ten years ahead" and "a minute later" are exact.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.clocks import device_clock, record_clock_reset
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.settings import plant_books
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.jobs.accountant import Accountant
from heliod.daemon.jobs.intake import Ingest, Rejections
from heliod.daemon.jobs.streak import Streak
from heliod.daemon.read.health import Health, WatchedDevice
from heliod.daemon.read.health_report import assemble, store_state
from heliod.rewards.readings import Reading
from heliod.rewards.times import rfc3339
from tests.daemon.ledger_fixture import STEP, write_config
from tests.support import fill, tmpfs

S = 1_000_000
NOW = int(datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()) * S
AHEAD = NOW + 3650 * 86_400 * S


class Clock:
    """The daemon's clock, moved by the test."""

    def __init__(self, now_us: int) -> None:
        self.now_us = now_us

    def __call__(self) -> int:
        return self.now_us


class Report:
    """The intake's report, ignored here (the metrics have their own tests)."""

    def committed(self) -> None:
        pass

    def stored(self, device: str, count: int) -> None:
        pass

    def rejected(self, device: str, reason: str) -> None:
        pass


def reading(device: str, at_us: int, wh: int) -> Reading:
    return Reading(device, datetime.fromtimestamp(at_us / S, UTC), {"energy_wh": Decimal(wh)})


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'heliod.db'}")


def test_a_device_whose_newest_reading_is_ahead_is_in_state_clock(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(AHEAD)
    rejections = Rejections()
    ingest = Ingest(store, clock, Report(), rejections)
    ingest.ingest([reading("m1", AHEAD - 60 * S, 1000), reading("m1", AHEAD, 2000)])
    clock.now_us = NOW  # the clock is right again: readings of now are not after 2036
    caplog.set_level(logging.INFO)
    ingest.ingest([reading("m1", NOW, 3000)])
    ingest.ingest([reading("m1", NOW + 10 * S, 3100)])  # within the minute: not logged again
    health = Health(store, [WatchedDevice("m1", 10 * S)], clock, rejections=rejections.view)
    body = assemble(health.facts())
    assert body["status"] == "degraded"
    assert body["devices"]["m1"] == {
        "state": "clock",
        "last_reading_at": rfc3339(AHEAD),
        "rejected": 2,
        "last_rejection": {"reason": "timestamp_not_after_last", "at": rfc3339(NOW)},
    }
    assert body["reasons"] == [
        f"Device m1: its newest stored reading ({rfc3339(AHEAD)}) is more than 5 minutes "
        f"ahead of this gateway's clock ({rfc3339(NOW)}), so its new readings are rejected as "
        "not after it (2 since start). Set the clock right, then run "
        "`heliod readings reset-clock --device m1`."
    ]
    rejected = [r for r in caplog.records if r.name == "heliod.intake"]
    assert [r.levelname for r in rejected] == ["WARNING"]
    assert rejected[0].getMessage() == (
        f"m1: 1 reading rejected, never accounted; the last: its time {rfc3339(NOW)} is not "
        f"after the device's last reading, at {rfc3339(AHEAD)}"
    )
    clock.now_us = NOW + 61 * S
    ingest.ingest([reading("m1", NOW + 61 * S, 3200)])
    assert "m1: 2 readings rejected" in caplog.records[-1].getMessage()

    # The clock error is logged at most once a minute.
    caplog.clear()
    health.watch()
    clock.now_us += 30 * S
    health.watch()
    clock.now_us += 31 * S
    health.watch()
    errors = [r for r in caplog.records if r.name == "heliod.health"]
    assert [r.levelname for r in errors] == ["ERROR", "ERROR"]
    assert "reset-clock --device m1" in errors[0].getMessage()

    with store.write() as conn:
        record_clock_reset(conn, device_clock(conn, "m1"), clock.now_us)
    body = assemble(health.facts())
    assert body["devices"]["m1"]["state"] == "stale"  # no reading stored since the reset
    ingest.ingest([reading("m1", clock.now_us, 3300)])
    body = assemble(health.facts())
    assert (body["status"], body["devices"]["m1"]["state"]) == ("ok", "ok")
    assert body["devices"]["m1"]["rejected"] == 3  # since start, kept


def test_a_stale_device_and_one_in_error_each_give_a_reason(store: Store) -> None:
    clock = Clock(NOW)
    ingest = Ingest(store, clock, Report())
    ingest.ingest([reading("inv1", NOW - 31 * S, 1000)])

    class Link:
        state = "error"
        last_reading_at = None

    health = Health(
        store,
        [WatchedDevice("inv1", 10 * S), WatchedDevice("inv2", 10 * S)],
        clock,
        sources=[lambda: {"inv2": Link()}],
    )
    body = assemble(health.facts())
    assert [body["devices"][d]["state"] for d in ("inv1", "inv2")] == ["stale", "error"]
    assert body["reasons"] == [
        f"Device inv1: no reading since {rfc3339(NOW - 31 * S)} (3 intervals of 10 s or more).",
        "Device inv2: its link or the device fails; the log says why.",
    ]


def test_a_failed_write_makes_the_store_error_until_the_next_good_commit(store: Store) -> None:
    clock = Clock(NOW)
    health = Health(store, [], clock)
    assert assemble(health.facts())["store"]["state"] == "ok"
    row = {"consumer": "x", "position": 1, "updated_us": NOW}
    with store.write() as conn:
        conn.execute(insert(t.positions).values(**row))
    with pytest.raises(Exception, match="UNIQUE"), store.write() as conn:
        conn.execute(insert(t.positions).values(**row))  # the database refuses this write
    body = assemble(health.facts())
    assert body["store"]["state"] == "error"
    assert "UNIQUE constraint failed: positions.consumer" in body["store"]["last_error"]
    assert body["reasons"][0].startswith(
        "The store failed to write: UNIQUE constraint failed: positions.consumer."
    )
    store.set_position("y", 1, NOW)  # a good commit
    body = assemble(health.facts())
    assert (body["status"], body["store"]["state"]) == ("ok", "ok")
    assert "UNIQUE" in body["store"]["last_error"]  # kept for the record


def test_low_space_is_under_5_percent_and_under_100_mb() -> None:
    gb = 1_000_000_000
    assert store_state({"free_bytes": 49_999_999, "total_bytes": gb}) == "low_space"
    assert store_state({"free_bytes": 50_000_000, "total_bytes": gb}) == "ok"  # exactly 5 %
    assert store_state({"free_bytes": 400_000_000, "total_bytes": 10 * gb}) == "ok"  # 4 %, 400 MB
    assert store_state({"free_bytes": 99_999_999, "total_bytes": 10 * gb}) == "low_space"
    assert store_state({"free_bytes": None, "total_bytes": None}) == "ok"  # PostgreSQL
    assert store_state({"failing": True, "free_bytes": 0, "total_bytes": gb}) == "error"


def test_a_nearly_full_disk_under_the_store_is_low_space(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        store = Store.open(f"sqlite:///{disk / 'heliod.db'}")
        try:
            health = Health(store, [], Clock(NOW))
            body = assemble(health.facts())
            assert body["store"]["state"] == "ok"
            fill(disk, leave=150_000)  # under 5 % of 4 MiB (209,715 bytes)
            body = assemble(health.facts())
            assert body["store"]["state"] == "low_space"
            assert 0 < body["store"]["free_bytes"] <= 150_000
            assert body["reasons"][0].startswith("The store's disk has 0.1 MB free (3.")
        finally:
            store.close()


def test_a_job_failing_3_times_in_a_row_degrades_with_its_last_error(store: Store) -> None:
    streak = Streak()
    health = Health(store, [], Clock(NOW), jobs=lambda: {"push": streak.view()})
    for _ in range(2):
        streak.failed(ConnectionError("platform unreachable"))
    body = assemble(health.facts())
    assert (body["status"], body["jobs"]["push"]["state"]) == ("ok", "ok")
    streak.failed(ConnectionError("platform unreachable"))
    body = assemble(health.facts())
    assert body["jobs"]["push"] == {
        "state": "failing",
        "failures": 3,
        "last_error": "ConnectionError: platform unreachable",
    }
    assert body["reasons"] == [
        "Job push failed 3 times in a row: ConnectionError: platform unreachable."
    ]
    streak.succeeded()
    assert assemble(health.facts())["status"] == "ok"


def test_minting_with_no_backer_in_force_warns_and_degrades(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path)
    books = plant_books(config)
    clock = Clock(NOW)
    accountant = Accountant(store, books, clock)

    def unbacked() -> dict[str, dict[str, object]]:
        return {
            p: {"mwh_index": u.mwh_index, "completed_at": rfc3339(u.completed_at_us)}
            for p, u in accountant.unbacked().items()
        }

    health = Health(store, [], clock, unbacked=unbacked)
    start = datetime(2024, 3, 1, tzinfo=UTC)
    # alpha (inv1): 250 kWh per 10 minutes; readings 0..9 complete MWh 1 and 2.
    store.ingest(
        [Reading("inv1", start + i * STEP, {"energy_wh": Decimal(250_000 * i)}) for i in range(10)],
        NOW,
    )
    caplog.set_level(logging.INFO)
    assert accountant.run().mints == [("alpha", 1), ("alpha", 2)]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [w.getMessage() for w in warnings] == [
        "alpha minted MWh 1..2 with no backer in force: all their units stay undistributed "
        "for good. Import the share register (heliod backers import) before accounting; "
        "later mints use it"
    ]
    body = assemble(health.facts())
    assert body["status"] == "degraded"
    assert body["reasons"] == [
        f"Plant alpha minted MWh 2 (completed {rfc3339(int((start + 8 * STEP).timestamp()) * S)})"
        " with no backer in force: its units stay undistributed for good. Import the share "
        "register (`heliod backers import`); the next mints use it."
    ]
    # A restarted daemon says it from the store at once, before its accountant has run
    # (or when it cannot run: a full disk, a ledger it refuses).
    restarted = Accountant(store, books, clock)
    assert set(restarted.unbacked()) == {"alpha"}
    again = Health(
        store,
        [],
        clock,
        unbacked=lambda: {
            p: {"mwh_index": u.mwh_index, "completed_at": rfc3339(u.completed_at_us)}
            for p, u in restarted.unbacked().items()
        },
    )
    assert assemble(again.facts())["reasons"] == body["reasons"]
    assert restarted.run().mints == []
    assert set(restarted.unbacked()) == {"alpha"}
    # Once a register is in force, the next mint clears it.
    with store.write() as conn:
        apply_rows(
            conn, "alpha", parse_register("backer,amount\nann,1\n", config.plant("alpha").tz), NOW
        )
    store.ingest(
        [
            Reading("inv1", start + i * STEP, {"energy_wh": Decimal(250_000 * i)})
            for i in range(10, 15)
        ],
        NOW,
    )
    assert accountant.run().mints == [("alpha", 3)]
    assert accountant.unbacked() == {}
    assert assemble(health.facts())["status"] == "ok"


def test_minted_is_logged_only_once_the_batch_is_committed(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    books = plant_books(write_config(tmp_path))
    start = datetime(2024, 3, 1, tzinfo=UTC)
    store.ingest(
        [Reading("inv1", start + i * STEP, {"energy_wh": Decimal(250_000 * i)}) for i in range(6)],
        NOW,
    )
    accountant = Accountant(store, books, Clock(NOW))
    # The database refuses the batch's last write (the accountant's state), as a full
    # disk refuses a commit: every mint of the batch is rolled back with it.
    with store.write() as conn:
        for event in ("INSERT", "UPDATE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON accountant "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
    caplog.set_level(logging.INFO)
    for _ in range(2):
        with pytest.raises(Exception, match="database or disk is full"):
            accountant.run()
    assert not [r for r in caplog.records if "minted" in r.getMessage()]
    with store.write() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse_insert")
        conn.exec_driver_sql("DROP TRIGGER refuse_update")
    assert accountant.run().mints == [("alpha", 1)]
    minted = [r.getMessage() for r in caplog.records if r.getMessage().startswith("minted")]
    assert len(minted) == 1
    assert minted[0].startswith("minted MWh 1 of alpha: 100000000 units to 0 backers")


def test_every_cause_of_degraded_has_its_own_plain_sentence() -> None:
    # One fact per cause (docs/operations.md, "What to do about each reason"): each gives
    # exactly one reason, a sentence (a capital first, a full stop last, no "None").
    causes: dict[str, dict[str, object]] = {
        "clock": {
            "devices": {
                "m1": {
                    "state": "clock",
                    "newest_stored_at": rfc3339(AHEAD),
                    "rejected": 4,
                    "last_rejection": {"reason": "timestamp_not_after_last", "at": rfc3339(NOW)},
                }
            }
        },
        "stale": {"devices": {"m1": {"state": "stale", "interval": "10 s"}}},
        "error": {"devices": {"m1": {"state": "error"}}},
        "rejected push events": {"sync": {"rejected": 2, "pending": 0}},
        "store error": {"store": {"failing": True, "last_error": "database or disk is full"}},
        "low space": {"store": {"free_bytes": 1_000_000, "total_bytes": 1_000_000_000}},
        "failing job": {"jobs": {"export": {"failures": 3, "last_error": None}}},
        "unbacked": {"unbacked": {"alpha": {"mwh_index": 2, "completed_at": rfc3339(NOW)}}},
        "refused register": {"register": {"alpha": {"refusal": "Heliod-Signature is missing"}}},
    }
    for cause, facts in causes.items():
        body = assemble({"now": rfc3339(NOW), **facts})
        assert body["status"] == "degraded", cause
        [reason] = body["reasons"]
        assert reason[0].isupper() and reason.endswith("."), (cause, reason)
        assert "None" not in reason and ".." not in reason, (cause, reason)
    assert assemble({"now": rfc3339(NOW)}) | {"export": {}} == {
        "status": "ok",
        "reasons": [],
        "devices": {},
        "store": {"state": "ok", "free_bytes": None, "last_error": None},
        "jobs": {},
        "sync": {"pending": 0, "rejected": 0},
        "export": {},
    }
