"""The share register pulled from the platform: applied like `backers import`, or refused whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from heliod.adapters.platform import (
    MAX_REGISTER_BYTES,
    InvalidAnswer,
    PlatformClient,
    PlatformSettings,
    check_signature,
    signature,
)
from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.shares import apply_rows
from heliod.daemon.boot.settings import platform_parts
from heliod.daemon.cli.csv_input import parse_register
from heliod.daemon.jobs.register_pull import RegisterSync, SyncedPlant, parse_answer
from heliod.daemon.read.health import Health, assemble
from heliod.rewards.register import BEGINNING_US
from tests.daemon.ledger_fixture import SECRET, Ledger, make_ledger, now_us
from tests.daemon.platform_server import Platform, backers_body

GOOD = [
    {"backer": "alice", "amount": "100", "valid_from": "2020-01-01T00:00:00Z"},
    {"backer": "frank", "amount": 0.1, "valid_from": "2024-01-01"},  # a JSON number
    {"backer": "grace", "amount": "250.50"},  # valid_from optional: the beginning of time
    {"backer": "alice", "amount": "120", "valid_from": "2024-06-01T12:00:00+02:00"},
]
DOC_V1 = "8a9dbb20130d45d0491781bf1b8dbaa9b9ae5adfdcd9498e4ccd9ac84d9b783f"  # docs/platform.md
CSV = (
    "backer,amount,valid_from\n"
    "alice,100,2020-01-01T00:00:00Z\n"
    "frank,0.1,2024-01-01\n"
    "grace,250.50,\n"
    "alice,120,2024-06-01T12:00:00+02:00\n"
)


@pytest.fixture
def platform() -> Iterator[Platform]:
    """The platform, listening."""
    server = Platform(SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def ledger(tmp_path: Path, platform: Platform) -> Iterator[Ledger]:
    """The two plants, their CSV registers already imported."""
    book = make_ledger(tmp_path, push_url=platform.url, backers_url=platform.backers_url)
    yield book
    book.store.close()


class Clock:
    """A settable clock in µs."""

    def __init__(self) -> None:
        self.now = now_us()

    def __call__(self) -> int:
        return self.now


def syncer(ledger: Ledger, platform: Platform, clock: Clock | None = None) -> RegisterSync:
    """A RegisterSync of both plants over a real HTTP client."""
    client = PlatformClient(
        PlatformSettings(platform.url, SECRET, backers_url=platform.backers_url, timeout_s=2.0)
    )
    plants = [SyncedPlant(p.id, p.tz) for p in ledger.config.plants]
    return RegisterSync(ledger.store, client, plants, clock_us=clock or Clock())


def shares(store: Store, plant: str) -> list[tuple[str, str, int]]:
    """(backer, weight text, valid_from µs) of a plant's rows, in store order."""
    s = t.shares.c
    with store.read() as conn:
        return [
            (r.backer, r.weight, r.valid_from_us)
            for r in conn.execute(
                select(s.backer, s.weight, s.valid_from_us).where(s.plant == plant).order_by(s.id)
            )
        ]


def test_an_answer_is_applied_as_the_same_csv_would_be(
    tmp_path: Path, ledger: Ledger, platform: Platform
) -> None:
    platform.backers["alpha"] = (200, backers_body(GOOD))
    sync = syncer(ledger, platform)
    before = shares(ledger.store, "alpha")
    assert sync.sync_plant(SyncedPlant("alpha", ledger.config.plant("alpha").tz))
    added = shares(ledger.store, "alpha")[len(before) :]
    # The same rows through `backers import` into another store: identical.
    other = Store.open(f"sqlite:///{tmp_path / 'csv.db'}")
    with other.write() as conn:
        apply_rows(conn, "alpha", parse_register(CSV, ledger.config.plant("alpha").tz), now_us())
    assert added == shares(other, "alpha")
    other.close()
    assert ("frank", "0.1", 1704063600000000) in added  # exact, in Paris time (UTC+1)
    assert ("grace", "250.5", BEGINNING_US) in added  # normalized, as `backers import` does
    assert sync.status()["alpha"]["added"] == 4
    # Polling the same answer again changes nothing.
    assert sync.sync_plant(SyncedPlant("alpha", ledger.config.plant("alpha").tz))
    assert shares(ledger.store, "alpha") == before + added
    assert sync.status()["alpha"]["added"] == 0
    [(path, signed), _] = platform.gets
    assert (path, signed) == ("/backers/alpha", True)  # {plant} replaced, signed over b""


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not JSON"),
        (b"<html>maintenance</html>", "not JSON"),
        (b'{"backers": []}', "empty list"),
        (b'{"items": []}', 'expected {"backers": [...]}'),
        (b"[]", 'expected {"backers": [...]}'),
        (b'{"backers": [{"backer": "bob", "amount": NaN}]}', "NaN is not a number"),
        (backers_body([*GOOD, {"backer": "bob", "amount": "abc"}]), "backers[4]: amount"),
        (backers_body([*GOOD, {"backer": "bob", "amount": "-5"}]), "backers[4]: amount"),
        (backers_body([*GOOD, {"backer": "bob smith", "amount": "5"}]), "backers[4]: backer"),
        (backers_body([*GOOD, {"backer": "bob", "amount": True}]), "backers[4]: amount"),
        (backers_body([*GOOD, {"amount": "5"}]), "backers[4]: backer"),
        (backers_body([*GOOD, {"backer": "", "amount": ""}]), "backers[4]: backer"),
        (backers_body([*GOOD, "bob,5"]), "backers[4]: expected an object"),
        (
            backers_body([*GOOD, {"backer": "bob", "amount": "5", "valid_from": "soon"}]),
            "backers[4]: valid_from",
        ),
        (
            backers_body([*GOOD, {"backer": "grace", "amount": "1"}]),
            "backers[4]: backer grace already has a row for this valid_from in row [2]",
        ),
        (backers_body([{"backer": "zoe", "amount": "0"}]), "unknown backer 'zoe'"),
        # Amounts: 0..10^15 with at most 9 decimal places, refused, never rounded.
        (
            backers_body([*GOOD, {"backer": "bob", "amount": "1000000000000001"}]),
            "backers[4]: amount: must be 0..10^15 with at most 9 decimal places, "
            "got 1000000000000001",
        ),
        (
            b'{"backers": [{"backer": "bob", "amount": 0.30000000000000004}]}',
            "backers[0]: amount: has more than 9 decimal places, got 0.30000000000000004",
        ),
        (
            backers_body([*GOOD, {"backer": "bob", "amount": "1E-999999"}]),
            "backers[4]: amount: has more than 9 decimal places, got 1E-999999",
        ),
        (  # a JSON number that would be a billion digits written out
            b'{"backers": [{"backer": "bob", "amount": 1E999999999}]}',
            "backers[0]: amount: must be 0..10^15 with at most 9 decimal places, got 1E+999999999",
        ),
    ],
)
def test_a_doubtful_answer_is_refused_whole(
    ledger: Ledger, platform: Platform, body: bytes, problem: str
) -> None:
    platform.backers["alpha"] = (200, body)
    sync = syncer(ledger, platform)
    before = shares(ledger.store, "alpha")
    assert not sync.sync_plant(SyncedPlant("alpha", ledger.config.plant("alpha").tz))
    assert shares(ledger.store, "alpha") == before  # nothing applied, not even the good rows
    status = sync.status()["alpha"]
    assert status["refused"] == 1
    assert problem in status["last_error"]
    assert status["last_success_at"] is None


def test_a_missing_backer_keeps_their_share(ledger: Ledger, platform: Platform) -> None:
    # alpha has alice, bob and carol; a truncated answer names only alice.
    platform.backers["alpha"] = (200, backers_body([{"backer": "alice", "amount": "100"}]))
    sync = syncer(ledger, platform)
    before = shares(ledger.store, "alpha")
    assert sync.sync_plant(SyncedPlant("alpha", ledger.config.plant("alpha").tz))
    assert shares(ledger.store, "alpha") == before  # alice's row was already there
    # Ending a share takes an explicit 0.
    platform.backers["alpha"] = (
        200,
        backers_body([{"backer": "bob", "amount": "0", "valid_from": "2025-01-01T00:00:00Z"}]),
    )
    assert sync.sync_plant(SyncedPlant("alpha", ledger.config.plant("alpha").tz))
    assert shares(ledger.store, "alpha")[-1] == ("bob", "0", 1735689600000000)


def test_polled_at_start_then_hourly_sooner_after_a_failure(
    ledger: Ledger, platform: Platform
) -> None:
    clock = Clock()
    sync = syncer(ledger, platform, clock)
    platform.backers["alpha"] = (200, backers_body(GOOD))
    platform.backers["beta"] = (503, b'{"error":"maintenance"}')
    sync.sync_due()  # at start: both plants
    assert [p for p, _ in platform.gets] == ["/backers/alpha", "/backers/beta"]
    status: dict[str, Any] = sync.status()
    assert status["alpha"]["last_error"] is None
    assert "HTTP 503" in status["beta"]["last_error"]
    sync.sync_due()  # nothing due yet
    assert len(platform.gets) == 2
    clock.now += 301 * 1_000_000  # after a failure: again in 5 minutes
    sync.sync_due()
    assert [p for p, _ in platform.gets][2:] == ["/backers/beta"]
    clock.now += 3600 * 1_000_000  # an hour later: both again
    sync.sync_due()
    assert sorted(p for p, _ in platform.gets[3:]) == ["/backers/alpha", "/backers/beta"]
    # Failed pulls in a row, for /healthz (`failing` from 3): beta's, its worst plant.
    assert sync.streak() == {"failures": 3, "last_error": sync.status()["beta"]["last_error"]}
    platform.stop()  # down: a network failure, retried sooner too
    clock.now += 3600 * 1_000_000
    sync.sync_due()
    assert "platform unavailable" in sync.status()["alpha"]["last_error"]
    assert sync.state["alpha"].next_us == clock.now + 300 * 1_000_000
    assert sync.streak()["failures"] == 4
    assert "platform unavailable" in sync.streak()["last_error"]


def test_built_from_the_configuration(ledger: Ledger, platform: Platform, tmp_path: Path) -> None:
    parts = platform_parts(ledger.config)
    assert parts is not None
    assert [(p.id, str(p.tz)) for p in parts.register_plants] == [
        ("alpha", "Europe/Paris"),
        ("beta", "America/New_York"),
    ]
    (tmp_path / "bare").mkdir()
    bare = make_ledger(tmp_path / "bare", push_url=platform.url)  # no backers_url
    bare_parts = platform_parts(bare.config)
    assert bare_parts is not None
    assert bare_parts.register_plants == []
    bare.store.close()


def test_a_4xx_is_reported_and_retried_next_hour(ledger: Ledger, platform: Platform) -> None:
    clock = Clock()
    sync = syncer(ledger, platform, clock)
    sync.sync_due()  # the platform knows neither plant: 404
    assert "HTTP 404" in sync.status()["alpha"]["last_error"]
    assert sync.state["alpha"].next_us == clock.now + 3600 * 1_000_000


def test_parse_answer_keeps_decimals_exact() -> None:
    # As a binary float 0.123456789 would be 0.12345678899999999733605449…
    rows = parse_answer(
        b'{"backers": [{"backer": "a", "amount": 0.123456789, "valid_from": null}]}',
        ZoneInfo("UTC"),
    )
    assert str(rows[0].amount) == "0.123456789"
    assert rows[0].valid_from_us == BEGINNING_US


@pytest.mark.parametrize(
    ("signing", "problem"),
    [
        ("none", "no Heliod-Signature header"),
        ("stale", "s from the gateway's clock (at most 300 s)"),
        ("other-secret", "Heliod-Signature does not match the body"),
        ("tampered", "Heliod-Signature does not match the body"),
    ],
)
def test_an_answer_not_signed_by_the_platform_is_refused_and_reported(
    ledger: Ledger,
    platform: Platform,
    caplog: pytest.LogCaptureFixture,
    signing: str,
    problem: str,
) -> None:
    # Anyone on the path could otherwise add a backer with a huge weight.
    thief = [*GOOD, {"backer": "mallory", "amount": "1000000000"}]
    platform.backers["alpha"] = (200, backers_body(thief))
    platform.answer_signing = signing
    sync = syncer(ledger, platform)
    health = Health(ledger.store, [], now_us, register=sync.status)
    before = shares(ledger.store, "alpha")
    assert not sync.sync_plant(SyncedPlant("alpha", ledger.config.plant("alpha").tz))
    assert shares(ledger.store, "alpha") == before  # nothing applied
    status = sync.status()["alpha"]
    assert status["refused"] == 1
    assert problem in status["last_error"]
    assert any(
        r.levelname == "ERROR"
        and "refused, nothing applied" in r.getMessage()
        and problem in r.getMessage()
        for r in caplog.records
    )
    body = assemble(health.facts())
    assert body["status"] == "degraded"
    [reason] = body["reasons"]
    assert reason.startswith("The platform's share register answer for plant alpha was refused: ")
    assert problem in reason
    # Signed again by the platform: applied, and the reason is gone.
    platform.answer_signing = "ok"
    assert sync.sync_plant(SyncedPlant("alpha", ledger.config.plant("alpha").tz))
    assert "mallory" in {backer for backer, *_ in shares(ledger.store, "alpha")}
    after = assemble(health.facts())
    assert (after["status"], after["reasons"]) == ("ok", [])
    # The rest is as before (the disk's free bytes move with the machine's other work).
    assert {k: v for k, v in after.items() if k not in {"status", "reasons", "store"}} == {
        k: v for k, v in body.items() if k not in {"status", "reasons", "store"}
    }


def test_an_answer_larger_than_32_mib_is_refused_whole(ledger: Ledger, platform: Platform) -> None:
    row = b'{"backer": "b", "amount": "1"},'
    filler = row * (MAX_REGISTER_BYTES // len(row) + 1)
    platform.backers["alpha"] = (200, b'{"backers": [' + filler + row[:-1] + b"]}")
    sync = syncer(ledger, platform)
    before = shares(ledger.store, "alpha")
    assert not sync.sync_plant(SyncedPlant("alpha", ledger.config.plant("alpha").tz))
    assert shares(ledger.store, "alpha") == before
    status = sync.status()["alpha"]
    assert (status["refused"], status["refusal"]) == (1, "answer larger than 33554432 bytes")


def test_the_signature_of_docs_platform_md() -> None:
    """The worked example of docs/platform.md, "Share register": its header checks out."""
    body = (
        b'{"backers":[{"backer":"alice","amount":"100","valid_from":"2020-01-01T00:00:00Z"},'
        b'{"backer":"grace","amount":"250.5"}]}'
    )
    header = "t=1717242455,v1=" + DOC_V1
    assert signature("example-secret-do-not-use", body, 1717242455) == header
    check_signature("example-secret-do-not-use", header, body, 1717242455 + 300)
    with pytest.raises(InvalidAnswer, match="301 s from the gateway's clock"):
        check_signature("example-secret-do-not-use", header, body, 1717242455 + 301)
    with pytest.raises(InvalidAnswer, match="does not match the body"):
        check_signature("example-secret-do-not-use", header, body + b" ", 1717242455)
    for bad in ("", "v1=" + DOC_V1, "t=1717242455", "t=x,v1=" + DOC_V1, f"t=1,v1={DOC_V1[:-1]}é"):
        with pytest.raises(InvalidAnswer):
            check_signature("example-secret-do-not-use", bad, body, 1717242455)
