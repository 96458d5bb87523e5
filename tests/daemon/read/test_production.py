"""Production points (docs/platform.md) and power curves from the rollups, and raw-data retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from heliod.adapters.store import Store
from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.adapters.store.retention import prune
from heliod.daemon.jobs.accountant import Accountant, PlantBook
from heliod.daemon.read.production import MAX_POINTS, measured_power, production, step_starts
from heliod.rewards.energy import Bound
from heliod.rewards.ledger import PlantRules
from heliod.rewards.readings import Reading
from heliod.rewards.times import from_us, rfc3339, to_us

PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")
NOW = to_us(datetime(2030, 1, 1, tzinfo=UTC))


def us(text: str) -> int:
    return int(to_us(datetime.fromisoformat(text)))


def rfc(t_us: int) -> str:
    return rfc3339(t_us).replace("Z", "+00:00")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


def energy(
    store: Store,
    items: list[tuple[str, str, int]],
    plant: str = "p",
    *,
    buckets_only: bool = False,
    hours_only: bool = False,
) -> None:
    """Accepted energy (device, instant of P, Wh) added as the accountant adds it."""
    buckets: dict[tuple[str, str, int], int] = {}
    hours: dict[tuple[str, int], int] = {}
    for device, at, wh in items:
        start = us(at) - us(at) % repo.BUCKET_US
        key = (plant, device, start)
        buckets[key] = buckets.get(key, 0) + wh * 1000
        hour = (plant, us(at) - us(at) % repo.HOUR_US)
        hours[hour] = hours.get(hour, 0) + wh * 1000
    with store.write() as conn:
        if not hours_only:
            repo.add_energy(conn, buckets)
        if not buckets_only:
            repo.add_energy_hourly(conn, hours)


def points(
    store: Store,
    start: str,
    end: str,
    step: str,
    tz: tzinfo = PARIS,
    devices: list[str] | None = None,
) -> list[tuple[str, Decimal, Decimal]]:
    with store.read() as conn:
        return [
            (p.as_json()["t"], p.energy_wh, p.avg_power_w)
            for p in production(conn, "p", devices, us(start), us(end), step=step, tz=tz)
        ]


def test_days_follow_local_midnight_across_clock_changes(store: Store) -> None:
    energy(
        store,
        [
            ("inv1", "2024-03-30T23:00:00+00:00", 1000),  # 00:00 local on the 23-hour day
            ("inv2", "2024-03-31T21:55:00+00:00", 2300),  # 23:55 local, same day
            ("inv1", "2024-03-31T22:00:00+00:00", 500),  # 00:00 local on April 1st
            ("inv1", "2024-10-27T22:59:59+00:00", 2500),  # 23:59:59 local on the 25-hour day
        ],
    )
    assert points(store, "2024-03-31T00:00:00+01:00", "2024-04-02T00:00:00+02:00", "1d") == [
        ("2024-03-30T23:00:00Z", Decimal("3300.000"), Decimal("143.478")),  # 3300 × 3600 / 82800
        ("2024-03-31T22:00:00Z", Decimal("500.000"), Decimal("20.833")),
    ]
    (autumn,) = points(store, "2024-10-27T00:00:00+02:00", "2024-10-28T00:00:00+01:00", "1d")
    assert autumn == ("2024-10-26T22:00:00Z", Decimal("2500.000"), Decimal("100.000"))
    hours = points(store, "2024-10-27T00:00:00+02:00", "2024-10-28T00:00:00+01:00", "1h")
    assert len(hours) == 25  # the repeated hour is its own point
    assert hours[-1] == ("2024-10-27T22:00:00Z", Decimal("2500.000"), Decimal("2500.000"))
    assert sum(h[1] for h in hours) == Decimal(2500)


def test_days_in_a_half_hour_zone(store: Store) -> None:
    energy(
        store,
        [("inv1", "2024-06-01T18:25:00+00:00", 10), ("inv1", "2024-06-01T18:30:00+00:00", 20)],
    )
    assert [
        p[:2]
        for p in points(store, "2024-06-01T00:00+05:30", "2024-06-03T00:00+05:30", "1d", KOLKATA)
    ] == [
        ("2024-05-31T18:30:00Z", Decimal("10.000")),  # 23:55 local on June 1st
        ("2024-06-01T18:30:00Z", Decimal("20.000")),  # local midnight is 18:30 UTC
    ]
    assert [
        p[1]
        for p in points(
            store, "2024-06-01T23:00:00+05:30", "2024-06-02T01:00:00+05:30", "1h", KOLKATA
        )
    ] == [
        Decimal(10),
        Decimal(20),
    ]


def test_five_minute_steps_and_device_filter(store: Store) -> None:
    energy(
        store, [("inv1", "2024-06-01T10:01:00+00:00", 3), ("inv2", "2024-06-01T10:04:59+00:00", 4)]
    )
    energy(store, [("inv1", "2024-06-01T10:01:00+00:00", 7)], plant="other")
    got = points(store, "2024-06-01T10:02:00+00:00", "2024-06-01T10:10:00+00:00", "5m")
    assert got == [
        ("2024-06-01T10:00:00Z", Decimal("7.000"), Decimal("84.000")),  # 7 Wh in 5 min = 84 W
        ("2024-06-01T10:05:00Z", Decimal("0.000"), Decimal("0.000")),
    ]
    only = points(
        store, "2024-06-01T10:00:00+00:00", "2024-06-01T10:05:00+00:00", "5m", devices=["inv2"]
    )
    assert only == [("2024-06-01T10:00:00Z", Decimal("4.000"), Decimal("48.000"))]


def test_whole_hour_zones_read_the_hourly_sums_others_the_buckets(store: Store) -> None:
    # Written to one table only, to see which one each request reads.
    energy(store, [("inv1", "2024-06-01T10:20:00+00:00", 5)], hours_only=True)
    energy(store, [("inv1", "2024-06-01T10:40:00+00:00", 7)], buckets_only=True)
    paris = points(store, "2024-06-01T00:00:00+02:00", "2024-06-02T00:00:00+02:00", "1d")
    assert [p[1] for p in paris] == [Decimal(5)]  # hourly sums
    hours = points(store, "2024-06-01T12:00:00+02:00", "2024-06-01T13:00:00+02:00", "1h")
    assert [p[1] for p in hours] == [Decimal(5)]
    five = points(store, "2024-06-01T12:00:00+02:00", "2024-06-01T13:00:00+02:00", "5m")
    assert sum(p[1] for p in five) == Decimal(7)  # 5-minute steps: buckets
    some = points(store, "2024-06-01T00:00+02:00", "2024-06-02T00:00+02:00", "1d", devices=["inv1"])
    assert [p[1] for p in some] == [Decimal(7)]  # some devices only: buckets
    kolkata = points(store, "2024-06-01T00:00+05:30", "2024-06-02T00:00+05:30", "1d", KOLKATA)
    assert [p[1] for p in kolkata] == [Decimal(7)]  # midnight at 18:30 UTC: buckets


def test_hourly_and_bucket_paths_agree_across_clock_changes(store: Store) -> None:
    items = [
        (f"inv{i % 3}", rfc(us("2024-10-25T00:00:00+00:00") + i * 389_000_000), 1 + i % 7)
        for i in range(1100)  # 4.95 days around the October change, every 6.5 minutes
    ]
    energy(store, items)
    start, end = "2024-10-25T00:00:00+02:00", "2024-10-30T00:00:00+01:00"
    for step in ("1h", "1d"):
        whole = points(store, start, end, step)
        by_device = points(store, start, end, step, devices=["inv0", "inv1", "inv2"])
        assert whole == by_device
    assert sum(p[1] for p in whole) == sum(Decimal(wh) for _, _, wh in items)


def test_point_limit_and_bad_requests() -> None:
    start = us("2024-01-01T00:00:00+00:00")
    assert len(step_starts(start, start + MAX_POINTS * 300_000_000, "5m", PARIS)) == MAX_POINTS + 1
    with pytest.raises(ValueError, match="at most 10000"):
        step_starts(start, start + MAX_POINTS * 300_000_000 + 1, "5m", PARIS)
    with pytest.raises(ValueError, match="at most 10000"):
        step_starts(start, start + 10_001 * 86_400_000_000, "1d", UTC)
    with pytest.raises(ValueError, match="step must be one of"):
        step_starts(start, start + 1, "2h", PARIS)
    with pytest.raises(ValueError, match="after"):
        step_starts(start, start, "1h", PARIS)


def _readings(
    device: str, start: str, count: int, wh_step: int, power: list[int] | None = None
) -> list[Reading]:
    t0 = us(start)
    return [
        Reading(
            device,
            from_us(t0 + i * 60_000_000),
            {
                "energy_wh": Decimal(1_000 + i * wh_step),
                "power_w": Decimal((power or [0])[i % len(power or [0])]),
            },
        )
        for i in range(count)
    ]


def test_production_is_the_accounted_energy(store: Store) -> None:
    store.ingest(_readings("inv1", "2024-06-01T08:00:00+00:00", 30, 100), NOW)
    store.ingest(_readings("inv2", "2024-06-01T08:00:00+00:00", 30, 50), NOW)
    rules = PlantRules(
        "p", Bound.of(Decimal(250), Decimal("1.2")), frozenset({"inv1", "inv2"}), None
    )
    Accountant(store, [PlantBook(rules, 10**8, "SLR", 8)], lambda: NOW).run()
    hours = points(store, "2024-06-01T00:00:00+00:00", "2024-06-02T00:00:00+00:00", "1h", UTC)
    # 29 steps per device between 30 readings; the first is the baseline, the last pending.
    assert sum(h[1] for h in hours) == 28 * 100 + 28 * 50
    assert [h[1] for h in hours if h[1]] == [Decimal(28 * 150)]


def test_the_accountant_keeps_hourly_sums_of_its_buckets(store: Store) -> None:
    # 3 hours of readings every 7 minutes, accounted in batches of 10 readings.
    for device, wh in (("inv1", 300), ("inv2", 120)):
        t0 = us("2024-06-01T08:03:00+00:00")
        store.ingest(
            [
                Reading(device, from_us(t0 + i * 420_000_000), {"energy_wh": Decimal(i * wh)})
                for i in range(26)
            ],
            NOW,
        )
    rules = PlantRules(
        "p", Bound.of(Decimal(250), Decimal("1.2")), frozenset({"inv1", "inv2"}), None
    )
    Accountant(store, [PlantBook(rules, 10**8, "SLR", 8)], lambda: NOW, batch_size=10).run()
    with store.read() as conn:
        b, h = t.energy_buckets.c, t.energy_hourly.c
        from_buckets: dict[int, int] = {}
        for start, e in conn.execute(select(b.start_us, b.e_mwh).where(b.plant == "p")):
            hour = start - start % repo.HOUR_US
            from_buckets[hour] = from_buckets.get(hour, 0) + e
        hourly = dict(conn.execute(select(h.start_us, h.e_mwh).where(h.plant == "p")).all())
        e_mwh = repo.load_state(conn).plants["p"].e_mwh
    assert hourly == from_buckets
    assert len(hourly) == 3  # P at 08:10 to 10:51
    assert sum(hourly.values()) == e_mwh == (24 * 300 + 24 * 120) * 1000


def test_power_rollups_follow_ingest(store: Store) -> None:
    store.ingest(_readings("inv1", "2024-06-01T10:00:00+00:00", 10, 1, [100, 300]), NOW)
    store.ingest(_readings("inv2", "2024-06-01T10:00:00+00:00", 5, 1, [1000]), NOW)
    with store.read() as conn:
        rows = conn.execute(
            select(t.power_buckets).order_by(t.power_buckets.c.device, t.power_buckets.c.start_us)
        ).all()
        assert [tuple(r) for r in rows] == [
            ("inv1", us("2024-06-01T10:00:00+00:00"), 900_000, 5),  # 100+300+100+300+100 W
            ("inv1", us("2024-06-01T10:05:00+00:00"), 1_100_000, 5),
            ("inv2", us("2024-06-01T10:00:00+00:00"), 5_000_000, 5),
        ]
        curve = measured_power(
            conn,
            ["inv1", "inv2"],
            us("2024-06-01T10:00:00+00:00"),
            us("2024-06-01T10:15:00+00:00"),
            step="5m",
            tz=UTC,
        )
        hourly = measured_power(
            conn,
            ["inv1", "inv2"],
            us("2024-06-01T10:00:00+00:00"),
            us("2024-06-01T11:00:00+00:00"),
            step="1h",
            tz=UTC,
        )
    assert [p.power_w for p in curve] == [Decimal("1180.000"), Decimal("220.000"), None]
    assert [p.power_w for p in hourly] == [Decimal("1200.000")]  # inv1's mean 200 W + inv2's 1000 W


# -- retention ---------------------------------------------------------------------------


def _count(store: Store, table: t.Table) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def test_prune_keeps_what_is_not_accounted_exported_or_newest(store: Store) -> None:
    old = "2023-01-01T00:00:00+00:00"
    store.ingest(_readings("inv1", old, 100, 1, [5]), NOW)  # ids 1..100
    store.ingest(_readings("inv2", old, 3, 1, [5]), NOW)  # ids 101..103, all old
    store.ingest(_readings("inv1", "2025-01-01T00:00:00+00:00", 10, 1, [5]), NOW)  # 104..113
    with store.write() as conn:
        conn.execute(
            insert(t.rejected_readings),
            [{"device": "inv1", "ts_us": 0, "received_us": 0, "reason": "value_negative"}],
        )
    buckets_before = _count(store, t.power_buckets)
    cut = us("2024-01-01T00:00:00+00:00")
    store.set_position("accountant", 113, NOW)
    assert prune(store, cut).readings == 0  # the exporter has exported nothing yet
    assert _count(store, t.readings) == 113
    store.set_position("exporter", 60, NOW)
    result = prune(store, cut, window=7)
    assert result.readings == 60
    assert result.upto_id == 60
    store.set_position("exporter", 113, NOW)
    assert prune(store, cut, window=7).readings == 40 + 2  # inv2 keeps its newest reading
    with store.read() as conn:
        left = [
            tuple(r)
            for r in conn.execute(
                select(t.readings.c.id, t.readings.c.device).order_by(t.readings.c.id)
            )
        ]
    assert left == [(103, "inv2")] + [(i, "inv1") for i in range(104, 114)]
    assert _count(store, t.power_buckets) == buckets_before  # rollups are kept
    assert _count(store, t.rejected_readings) == 0
    # Without export configured, the accountant alone decides.
    store.ingest(_readings("inv3", old, 5, 1), NOW)
    assert prune(store, cut, consumers=("accountant",)).readings == 0  # not accounted yet
    store.set_position("accountant", 118, NOW)
    assert prune(store, cut, consumers=("accountant",)).readings == 4
