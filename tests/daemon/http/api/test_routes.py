"""Every docs/platform.md route against what the real accountant committed, exact to the last digit."""

from __future__ import annotations

import json
import re
import threading
from decimal import Decimal
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.daemon.http.api.app import API_PREFIX
from tests.daemon.http.api.conftest import AUTH, build_app
from tests.daemon.ledger_fixture import Ledger, make_ledger


def get(client: TestClient, path: str, **params: Any) -> Any:
    """GET with the token; the body parsed with its numbers as exact Decimals."""
    response = client.get(f"{API_PREFIX}{path}", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.text, parse_float=Decimal)


def error(client: TestClient, path: str, status: int, **params: Any) -> str:
    """The `error` message of a failing GET, after checking its status."""
    response = client.get(f"{API_PREFIX}{path}", params=params, headers=AUTH)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    return str(response.json()["error"])


def test_plants_are_the_ledger_s_exact_numbers(tmp_path: Any) -> None:
    ledger = make_ledger(tmp_path)
    # Steps of 333,333.334 Wh: in binary floats 3 × 333333.334 is not 1000000.002.
    ledger.produce("alpha", 3, Decimal("333333.334"))
    with TestClient(build_app(ledger)) as client:
        response = client.get(f"{API_PREFIX}/plants", headers=AUTH)
        plants = json.loads(response.text, parse_float=Decimal)
    alpha, beta = plants
    assert alpha["energy_wh"] == Decimal("4000000.008")  # 12 steps, each exact
    assert '"energy_wh": 4000000.008' in response.text  # a JSON number, not a string
    assert alpha["mwh_completed"] == 4
    assert alpha["minted"] == {"units": 4 * 10**8, "amount": "4.00000000"}
    assert alpha["capacity_kw"] == Decimal("2000.0")
    assert alpha["last_reading_at"] == "2024-03-01T02:20:00Z"  # the confirming reading
    assert (alpha["id"], alpha["name"]) == ("alpha", "Centrale Alpha")
    assert beta == {
        "id": "beta",
        "name": "Centrale Beta",
        "capacity_kw": Decimal("2000.0"),
        "energy_wh": Decimal("0.000"),
        "mwh_completed": 0,
        "minted": {"units": 0, "amount": "0.00"},
        "last_reading_at": None,
        "impact": None,  # no [plants.impact]
    }
    ledger.store.close()


def test_balances_hold_what_was_minted(client: TestClient, ledger: Ledger) -> None:
    alpha = get(client, "/plants/alpha/balances")
    # Three equal backers, U = 10^8, three mints: each got ⌊10^8 × 3 / 3⌋ = 10^8 units.
    assert alpha["symbol"] == "SLR"
    assert alpha["decimals"] == 8
    assert alpha["balances"] == [
        {"backer": b, "units": 10**8, "amount": "1.00000000"} for b in ("alice", "bob", "carol")
    ]
    assert alpha["undistributed"] == {"units": 0, "amount": "0.00000000"}
    beta = get(client, "/plants/beta/balances")
    # U = 250, shares 2/3 and 1/3 of 500 units: 333 and 166, one unit undistributed.
    assert beta["balances"] == [
        {"backer": "dave", "units": 333, "amount": "3.33"},
        {"backer": "erin", "units": 166, "amount": "1.66"},
    ]
    assert beta["undistributed"] == {"units": 1, "amount": "0.01"}
    held = sum(b["units"] for b in beta["balances"]) + beta["undistributed"]["units"]
    assert held == 2 * 250  # conservation (docs/accounting.md)
    assert error(client, "/plants/gamma/balances", 404) == "unknown plant 'gamma'"


def test_production_sums_to_the_accounted_energy(client: TestClient, ledger: Ledger) -> None:
    day = get(client, "/plants/alpha/production", **{"from": "2024-03-01", "to": "2024-03-02"})
    assert day["step"] == "1h"  # the default
    points = day["points"]
    assert len(points) == 24
    assert points[0]["t"] == "2024-02-29T23:00:00Z"  # local midnight in Paris (UTC+1)
    with ledger.store.read() as conn:
        e_mwh = repo.load_state(conn).plants["alpha"].e_mwh
    assert sum(p["energy_wh"] for p in points) == Decimal(e_mwh) / 1000
    for p in points:
        assert p["avg_power_w"] == p["energy_wh"]  # energy over one hour, in W
    # 01:00-02:00 UTC: steps at 01:00, 01:10, ..., 01:50 each 250 kWh (the 02:30 spike
    # and the 02:50 jump are not in E).
    by_t = {p["t"]: p["energy_wh"] for p in points}
    assert by_t["2024-03-01T01:00:00Z"] == Decimal("1500000.000")
    days = get(
        client, "/plants/beta/production", step="1d", **{"from": "2024-02-28", "to": "2024-03-02"}
    )
    assert [p["t"] for p in days["points"]] == [
        "2024-02-28T05:00:00Z",  # midnight in New York (UTC−5)
        "2024-02-29T05:00:00Z",
        "2024-03-01T05:00:00Z",
    ]
    # beta's two MWh were produced 00:10-01:40 UTC on 1 March, i.e. on 29 February there.
    assert days["points"][1]["energy_wh"] == Decimal("2000000.000")
    # 2,000,000 Wh × 3600 / 86400 s, rounded once to 0.001 W.
    assert days["points"][1]["avg_power_w"] == Decimal("83333.333")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"step": "2h"}, "step"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-13-01"}, "to"),
        ({"from": "2024-03-02", "to": "2024-03-01"}, "to"),
        ({"from": "2024-01-01", "to": "2024-06-01", "step": "5m"}, "from/to/step"),
        ({"form": "2024-01-01"}, "form"),
    ],
)
def test_production_refuses_bad_parameters(
    client: TestClient, params: dict[str, str], named: str
) -> None:
    message = error(client, "/plants/alpha/production", 400, **params)
    assert message.startswith(f"{named}: "), message


def test_credits_paging(client: TestClient, ledger: Ledger) -> None:
    first = get(client, "/credits", limit=4)
    assert [c["id"] for c in first["items"]] == [1, 2, 3, 4]
    assert first["next"] == "4"
    assert first["items"][3] == {
        "id": 4,
        "plant": "alpha",
        "mwh_index": 2,
        "completed_at": "2024-03-01T01:30:00Z",  # the 8th step's P (baseline at 00:10)
        "backer": "alice",
        "units": 33333333,
        "amount": "0.33333333",
        "symbol": "SLR",
    }
    rest = get(client, "/credits", after=first["next"])
    assert rest["next"] is None
    with ledger.store.read() as conn:
        total = conn.execute(select(func.count()).select_from(t.credits)).scalar()
    assert len(first["items"]) + len(rest["items"]) == total
    beta = [c for c in rest["items"] if c["plant"] == "beta"]
    assert {c["symbol"] for c in beta} == {"BET"}
    assert all(c["amount"] == f"{c['units'] // 100}.{c['units'] % 100:02d}" for c in beta)
    assert error(client, "/credits", 400, limit=0).startswith("limit: ")
    assert error(client, "/credits", 400, limit=1001).startswith("limit: ")
    assert error(client, "/credits", 400, limit="ten").startswith("limit: ")
    assert error(client, "/credits", 400, after="4; drop table").startswith("after: ")
    assert error(client, "/credits", 400, plant="alpha").startswith("plant: unknown parameter")


def test_paging_never_skips_nor_repeats_while_credits_arrive(db_url: str, tmp_path: Any) -> None:
    ledger = make_ledger(tmp_path, db_url)
    ledger.produce("alpha", 1)
    done = threading.Event()

    def mint() -> None:
        try:
            for _ in range(12):
                ledger.produce("alpha", 1)
                ledger.produce("beta", 1)
        finally:
            done.set()

    writer = threading.Thread(target=mint)
    seen: list[int] = []
    with TestClient(build_app(ledger)) as client:
        writer.start()
        cursor: str | None = None
        while True:
            finished = done.is_set()  # read before the page: a page after it sees everything
            body = get(client, "/credits", limit=5, **({"after": cursor} if cursor else {}))
            seen.extend(c["id"] for c in body["items"])
            if body["items"]:
                cursor = body["next"] or str(body["items"][-1]["id"])  # poll on from the last
            if body["next"] is None and finished:
                break
        writer.join()
    with ledger.store.read() as conn:
        stored = [int(i) for (i,) in conn.execute(select(t.credits.c.id).order_by(t.credits.c.id))]
    assert seen == stored  # every credit once, in id order
    assert len(stored) == 3 + 12 * (3 + 2)
    ledger.store.close()


def test_mints_and_their_filter(client: TestClient) -> None:
    everything = get(client, "/mints")
    assert [m["event_id"] for m in everything["items"]] == [
        "alpha:1",
        "alpha:2",
        "alpha:3",
        "beta:1",
        "beta:2",
    ]
    assert everything["next"] is None
    beta = get(client, "/mints", plant="beta", limit=1)
    [first] = beta["items"]
    assert first["event_id"] == "beta:1"
    assert (first["units"], first["amount"], first["decimals"]) == (250, "2.50", 2)
    assert first["undistributed"] == {"units": 1, "amount": "0.01"}
    second = get(client, "/mints", plant="beta", after=beta["next"])
    assert [m["event_id"] for m in second["items"]] == ["beta:2"]
    assert second["next"] is None
    assert error(client, "/mints", 404, plant="gamma") == "unknown plant 'gamma'"
    assert error(client, "/mints", 400, plant="Not A Plant").startswith("plant: ")


def test_anomalies_as_recorded_and_decided(client: TestClient, ledger: Ledger) -> None:
    outlier, jump = get(client, "/anomalies")["items"]
    assert outlier == {
        "id": 1,
        "plant": "alpha",
        "device": "inv1",
        "kind": "outlier",
        "status": "recorded",
        "reading_at": "2024-03-01T02:30:00Z",
        "value_wh": Decimal("58000000.000"),
        "previous_wh": Decimal("8000000.000"),
        "delta_wh": Decimal("50000000.000"),
        "credited_wh": Decimal("0.000"),
        "decided_at": None,
    }
    assert (jump["kind"], jump["status"], jump["delta_wh"]) == (
        "implausible_jump",
        "quarantined",
        Decimal("3000000.000"),
    )
    with ledger.store.write() as conn:
        repo.decide(conn, jump["id"], True, 1_750_000_000_000_000)
    decided = get(client, "/anomalies", after="1")
    [item] = decided["items"]
    assert item["status"] == "accepted"
    assert item["credited_wh"] == Decimal("3000000.000")
    assert item["decided_at"] == "2025-06-15T15:06:40Z"


def test_no_route_changes_anything(client: TestClient, ledger: Ledger) -> None:
    flat = list(iter_route_contexts(client.app.routes))  # type: ignore[attr-defined]
    assert len(flat) >= 10
    assert {m for r in flat for m in r.methods or ()} <= {"GET", "HEAD"}
    with ledger.store.read() as conn:
        before = {
            name: conn.execute(select(func.count()).select_from(table)).scalar()
            for name, table in t.metadata.tables.items()
        }
    for path in ("/plants", "/plants/alpha/balances", "/credits", "/mints", "/anomalies"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.request(method, f"{API_PREFIX}{path}", headers=AUTH, json={})
            assert response.status_code == 405, (method, path)
    with ledger.store.read() as conn:
        after = {
            name: conn.execute(select(func.count()).select_from(table)).scalar()
            for name, table in t.metadata.tables.items()
        }
    assert after == before


def test_every_api_answer_is_no_store(client: TestClient) -> None:
    # The OpenAPI document itself and every route it lists: an answer behind a token is
    # never kept by a cache on the way (a shared proxy would hand it to the next client).
    document = client.get(f"{API_PREFIX}/openapi.json", headers=AUTH)
    assert document.status_code == 200
    assert document.headers["cache-control"] == "no-store"
    values = {"id": "alpha", "backer": "alice"}
    paths = [p for p in document.json()["paths"] if p.startswith(API_PREFIX)]
    assert len(paths) >= 6
    for path in paths:
        url = re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], "x"), path)
        response = client.get(url, headers=AUTH)
        assert response.headers.get("cache-control") == "no-store", (url, response.status_code)
