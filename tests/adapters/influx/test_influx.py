"""The InfluxDB adapter: line protocol text, the SQLite fast path, and the writer's errors."""

from __future__ import annotations

import gc
import gzip
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, text

from heliod.adapters.errors import PermanentError, RetryableError
from heliod.adapters.influx import (
    InfluxAuthError,
    InfluxRefused,
    InfluxSettings,
    InfluxUnavailable,
    InfluxWriter,
)
from heliod.adapters.influx.lines import (
    escape,
    milli_text,
    mint_line,
    reading_lines,
    reading_prefix,
    tokens_text,
)
from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.adapters.store.export_source import Batch, ReadingSource
from tests.support import free_port
from tests.victoria import FakeInflux, Victoria, error

T0 = 1_700_000_000_000_000  # µs, 2023-11-14


# -- line protocol text ------------------------------------------------------------------


def test_numbers_are_exact_decimal_floats() -> None:
    assert milli_text(1_234_567) == "1234.567"
    assert milli_text(0) == "0.000"
    assert milli_text(5) == "0.005"
    assert milli_text(-1_500) == "-1.500"
    assert milli_text(-7) == "-0.007"
    assert (
        milli_text(10**18) == "1000000000000000.000"
    )  # 10^15 Wh, the largest counter value accepted
    assert tokens_text(100_000_000, 8) == "1.00000000"
    assert tokens_text(7, 0) == "7.0"


def test_reading_lines() -> None:
    prefixes = {"inv1": reading_prefix("brassemonte", "inv1")}
    rows = [
        (1, "inv1", T0, 1_234_567, 250_000, None),
        (2, "inv1", T0 + 1, None, -3_000, '{"ac_voltage_v":"230.100","status":"4"}'),
        (3, "inv1", T0 + 2, None, None, None),  # no field at all: no point
        (4, "old meter", T0 + 3, 12, None, None),  # not configured any more: no plant tag
    ]
    assert reading_lines(rows, prefixes).decode().splitlines() == [
        f"reading,device=inv1,plant=brassemonte energy_wh=1234.567,power_w=250.000 {T0}",
        "reading,device=inv1,plant=brassemonte"
        f" power_w=-3.000,ac_voltage_v=230.100,status=4.0 {T0 + 1}",
        rf"reading,device=old\ meter energy_wh=0.012 {T0 + 3}",
    ]


def test_escaping() -> None:
    assert escape("a b,c=d") == r"a\ b\,c\=d"
    assert escape("inv-1.a_b") == "inv-1.a_b"


def test_mint_lines_and_int64_limit() -> None:
    assert (
        mint_line("p1", 3, T0, 100_000_000, 8)
        == f"mint,plant=p1 mwh_index=3i,units=100000000i,tokens=1.00000000 {T0}"
    )
    # 10 tokens of 18 decimals per MWh: beyond a line-protocol integer, kept exact as text.
    huge = 10 * 10**18
    assert (
        mint_line("p1", 1, T0, huge, 18)
        == f'mint,plant=p1 mwh_index=1i,units_text="{huge}",tokens=10.000000000000000000 {T0}'
    )
    assert mint_line("p1", 1, T0, 2**63 - 1, 0).split()[1].startswith("mwh_index=1i,units=")


# -- the SQLite fast path gives the reference's bytes ----------------------------------------

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["inv1", "inv2", "meter 3", "gone"]),
        st.one_of(st.none(), st.integers(0, 10**18)),
        st.one_of(st.none(), st.integers(-(10**12), 10**12)),
        st.one_of(
            st.none(),
            st.dictionaries(
                st.sampled_from(["ac_voltage_v", "temp_c", "odd key", "a=b,c"]),
                st.decimals(-(10**9), 10**9, places=3, allow_nan=False).map(str)
                | st.sampled_from(["5", "-0", "1E+3", "0.000"]),
                min_size=1,
                max_size=3,
            ).map(lambda d: json.dumps(dict(sorted(d.items())), separators=(",", ":"))),
        ),
    ),
    min_size=1,
    max_size=40,
)

PLANTS = {"inv1": "p1", "inv2": "p,2", "meter 3": "p1"}


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('influx') / 'heliod.db'}")
    yield store
    store.close()


def _fill(store: Store, rows: list[tuple[str, int | None, int | None, str | None]]) -> None:
    with store.write() as conn:
        conn.execute(delete(t.readings))
        if store.dialect == "sqlite":  # ids from 1 again: readings ids are never reused otherwise
            conn.execute(text("DELETE FROM sqlite_sequence WHERE name = 'readings'"))
        conn.execute(
            insert(t.readings),
            [
                {
                    "device": d,
                    "ts_us": T0 + i * 1000,
                    "energy_mwh": e,
                    "power_mw": w,
                    "extra": x,
                    "received_us": T0,
                }
                for i, (d, e, w, x) in enumerate(rows)
            ],
        )


def _all_batches(source: ReadingSource) -> list[tuple[int, int, bytes]]:
    out, after = [], 0
    while (batch := source.batch_after(after)).rows:
        out.append((batch.rows, batch.last_id, batch.body))
        after = batch.last_id
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, batch_size=st.integers(1, 16))
def test_sqlite_fast_path_equals_reference(
    sqlite_store: Store, rows: list[tuple[str, int | None, int | None, str | None]], batch_size: int
) -> None:
    _fill(sqlite_store, rows)
    source = ReadingSource(sqlite_store, PLANTS, batch_size)
    assert source._sqlite
    with sqlite_store.read() as conn:
        stored = [
            tuple(r)
            for r in conn.exec_driver_sql(
                "SELECT id, device, ts_us, energy_mwh, power_mw, extra FROM readings ORDER BY id"
            )
        ]
    expected = []
    for i in range(0, len(stored), batch_size):
        window = stored[i : i + batch_size]
        expected.append((len(window), window[-1][0], reading_lines(window, source.prefixes)))
    assert _all_batches(source) == expected


def test_postgresql_and_sqlite_give_the_same_bytes(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        rows = [
            ("inv1", 1_000_123, 5_000, None),
            ("inv2", None, -250, '{"temp_c":"41.500"}'),
            ("meter 3", 7, None, '{"odd key":"5"}'),
            ("gone", None, None, None),
            ("inv1", 1_000_124, 0, None),
        ]
        _fill(store, rows)
        batches = _all_batches(ReadingSource(store, PLANTS, 2))
        assert [b[0] for b in batches] == [2, 2, 1]
        assert b"\n".join(b[2] for b in batches if b[2]).decode().splitlines() == [
            f"reading,device=inv1,plant=p1 energy_wh=1000.123,power_w=5.000 {T0}",
            rf"reading,device=inv2,plant=p\,2 power_w=-0.250,temp_c=41.500 {T0 + 1000}",
            rf"reading,device=meter\ 3,plant=p1 energy_wh=0.007,odd\ key=5.0 {T0 + 2000}",
            f"reading,device=inv1,plant=p1 energy_wh=1000.124,power_w=0.000 {T0 + 4000}",
        ]
    finally:
        store.close()


def test_sqlite_windows_skip_gaps_and_say_when_more_follows(sqlite_store: Store) -> None:
    rows: list[tuple[str, int | None, int | None, str | None]] = [
        ("inv1", 1000 + i, 5, None) for i in range(12)
    ]
    rows[8] = ("inv2", None, None, None)  # id 9: no field, no line
    _fill(sqlite_store, rows)
    with sqlite_store.write() as conn:  # ids 3..6 pruned: a gap inside the backlog
        conn.execute(delete(t.readings).where(t.readings.c.id.between(3, 6)))
    source = ReadingSource(sqlite_store, PLANTS, 3)
    got = []
    after = 0
    while (batch := source.batch_after(after)).rows:
        got.append((batch.after, batch.last_id, batch.rows, batch.points, batch.more))
        after = batch.last_id
    # Windows of 3 ids from the first id after the position: the gap costs no empty batch.
    assert got == [(0, 2, 2, 2, True), (2, 9, 3, 2, True), (9, 12, 3, 3, False)]
    assert source.batch_after(12) == Batch(12, 12, 0, b"", 0, more=False)  # nothing after
    source.close()


def test_sqlite_source_gives_its_connection_back(sqlite_store: Store) -> None:
    _fill(sqlite_store, [("inv1", 1, 2, None)] * 3)
    pool = sqlite_store.engine.pool
    gc.collect()
    before = pool.checkedout()  # type: ignore[attr-defined]
    source = ReadingSource(sqlite_store, PLANTS, 2)
    assert source.batch_after(0).more
    assert pool.checkedout() == before + 1  # type: ignore[attr-defined]
    source.close()
    assert pool.checkedout() == before  # type: ignore[attr-defined]
    assert source.batch_after(0).rows == 2  # reopened on use
    del source  # dropped without close(): given back all the same
    gc.collect()
    assert pool.checkedout() == before  # type: ignore[attr-defined]


# -- writing to a real server ------------------------------------------------------------


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Victoria]:
    vm = Victoria(tmp_path_factory.mktemp("vm") / "data").start()
    yield vm
    vm.stop()


def test_writes_reach_victoriametrics_exactly(victoria: Victoria) -> None:
    writer = InfluxWriter(InfluxSettings(victoria.url, "solar", "heliod", "unused"))
    values = [0, 1, 999, 1_234_567_891, 987_654_321_012_345, -42_500]
    rows = [(i, "w1", T0 + i * 1000, abs(v), v, None) for i, v in enumerate(values)]
    writer.write(reading_lines(rows, {"w1": reading_prefix("pw", "w1")}))
    writer.write(mint_line("pw", 1, T0, 10**8, 8).encode())
    writer.close()
    got = victoria.export('{plant="pw"}')
    energy = got[("reading_energy_wh", (("device", "w1"), ("plant", "pw")))]
    power = got[("reading_power_w", (("device", "w1"), ("plant", "pw")))]
    for i, v in enumerate(values):
        ms = (T0 + i * 1000) // 1000
        assert energy[ms] == float(Decimal(abs(v)) / 1000)
        assert power[ms] == float(Decimal(v) / 1000)
    assert got[("mint_units", (("plant", "pw"),))] == {T0 // 1000: 100_000_000}
    assert got[("mint_mwh_index", (("plant", "pw"),))] == {T0 // 1000: 1}
    assert got[("mint_tokens", (("plant", "pw"),))] == {T0 // 1000: 1.0}


def test_gzip_bodies_reach_victoriametrics(victoria: Victoria) -> None:
    settings_ = InfluxSettings(victoria.url, "solar", "heliod", "unused", gzip=True)
    writer = InfluxWriter(settings_)
    rows = [(i, "g1", T0 + i * 1000, 1000 * i, 7, None) for i in range(1, 300)]
    writer.write(reading_lines(rows, {"g1": reading_prefix("pg", "g1")}))
    writer.close()
    energy = victoria.export('{plant="pg"}')[
        ("reading_energy_wh", (("device", "g1"), ("plant", "pg")))
    ]
    assert energy == {(T0 + i * 1000) // 1000: float(i) for i in range(1, 300)}


# -- errors, against an HTTP server of our own ------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    server = FakeInflux()
    yield server
    server.close()


def _writer(url: str, timeout_s: float = 5.0) -> InfluxWriter:
    return InfluxWriter(InfluxSettings(url, "solar", "heliod", "s3cret-token", timeout_s))


def test_request_carries_token_bucket_and_precision(fake: FakeInflux) -> None:
    _writer(fake.url).write(b"reading,device=a,plant=p power_w=1.000 1")
    (request,) = fake.requests
    assert request.path == "/api/v2/write"
    assert request.query == {"org": ["solar"], "bucket": ["heliod"], "precision": ["us"]}
    assert request.headers["authorization"] == "Token s3cret-token"
    assert request.body == b"reading,device=a,plant=p power_w=1.000 1"
    assert request.headers["content-length"] == str(len(request.body))
    assert "transfer-encoding" not in request.headers


def test_a_sent_body_is_not_kept(fake: FakeInflux) -> None:
    # httpx keeps each response and its request in a reference cycle: with the cyclic
    # collector off, whatever the request holds stays alive; the body must not be in it.
    writer = _writer(fake.url)
    body = b"\n".join(b"reading,device=a,plant=p power_w=%d.000 %d" % (i, i) for i in range(500))
    refs = sys.getrefcount(body)
    gc.disable()
    try:
        for _ in range(3):
            writer.write(body)
        assert sys.getrefcount(body) == refs
    finally:
        gc.enable()
        writer.close()
    assert [r.body for r in fake.requests] == [body] * 3


def test_gzip_request_is_compressed_once(fake: FakeInflux) -> None:
    body = b"\n".join(b"reading,device=a,plant=p power_w=%d.000 %d" % (i, i) for i in range(500))
    settings_ = InfluxSettings(fake.url, "solar", "heliod", "s3cret-token", gzip=True)
    InfluxWriter(settings_).write(body)
    (request,) = fake.requests
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["content-length"] == str(len(request.body))
    assert gzip.decompress(request.body) == body
    assert len(request.body) < len(body) / 5


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (401, InfluxAuthError, ["refused the token", "HTTP 401", "influxdb.token_file"]),
        (403, InfluxAuthError, ["does not let the token write", "HTTP 403"]),
        (404, PermanentError, ["org or bucket not found", "influxdb.bucket"]),
        (400, InfluxRefused, ["refused the batch", "HTTP 400", "field type conflict"]),
        (413, InfluxRefused, ["HTTP 413"]),
        (422, InfluxRefused, ["HTTP 422"]),
        (405, PermanentError, ["HTTP 405"]),
        (500, InfluxUnavailable, ["unavailable", "HTTP 500"]),
        (503, InfluxUnavailable, ["HTTP 503"]),
    ],
)
def test_error_classification(
    fake: FakeInflux, status: int, kind: type[Exception], words: list[str]
) -> None:
    fake.answer = lambda _r: error(status, "field type conflict: energy_wh is integer")
    with pytest.raises(kind) as caught:
        _writer(fake.url).write(b"reading,device=a,plant=p power_w=1.000 1")
    message = str(caught.value)
    for word in words:
        assert word in message
    assert "s3cret-token" not in message
    assert isinstance(caught.value, RetryableError) == (status >= 500)
    if isinstance(caught.value, InfluxRefused):
        assert caught.value.status == status


def test_a_redirect_is_not_followed_and_says_where_it_points(fake: FakeInflux) -> None:
    moved = "https://influx.example/api/v2/write"
    fake.answer = lambda _r: (307, {"Location": moved}, b"")
    with pytest.raises(PermanentError) as caught:
        _writer(fake.url).write(b"x f=1.0 1")
    assert f"HTTP 307, a redirect to {moved}: not followed" in str(caught.value)
    assert len(fake.requests) == 1  # the token went nowhere else


def test_an_error_body_nested_too_deep_is_still_classified(fake: FakeInflux) -> None:
    fake.answer = lambda _r: (500, {"Content-Type": "application/json"}, b"[" * 100_000)
    with pytest.raises(InfluxUnavailable, match="HTTP 500"):
        _writer(fake.url).write(b"x f=1.0 1")


def test_429_keeps_retry_after(fake: FakeInflux) -> None:
    fake.answer = lambda _r: error(429, "slow down", {"Retry-After": "7"})
    with pytest.raises(InfluxUnavailable) as caught:
        _writer(fake.url).write(b"x f=1.0 1")
    assert caught.value.retry_after_s == 7.0


def test_connection_refused_and_timeout_are_retryable(fake: FakeInflux) -> None:
    with pytest.raises(InfluxUnavailable, match="unreachable"):
        _writer(f"http://127.0.0.1:{free_port()}").write(b"x f=1.0 1")
    fake.delay_s = 1.5
    with pytest.raises(InfluxUnavailable, match="unreachable"):
        _writer(fake.url, timeout_s=0.3).write(b"x f=1.0 1")


def test_settings_never_show_the_token(tmp_path: Path) -> None:
    settings_ = InfluxSettings("http://127.0.0.1:1", "o", "b", "s3cret-token")
    assert "s3cret-token" not in repr(settings_)
    assert "s3cret-token" not in settings_.where()
