"""Anomalies as the outside sees them, shared by `anomalies list --json` and the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, select

from heliod.adapters.store import schema as t
from heliod.rewards.times import rfc3339
from heliod.rewards.units import mwh_to_wh


def anomaly_item(r: Mapping[Any, Any]) -> dict[str, Any]:
    """One anomaly as `GET /api/v1/anomalies` and `anomalies list --json` show it."""

    def wh(value: Any) -> Any:
        return None if value is None else mwh_to_wh(int(value))

    return {
        "id": int(r["id"]),
        "plant": r["plant"],
        "device": r["device"],
        "kind": r["kind"],
        "status": r["status"],
        "reading_at": rfc3339(int(r["reading_at_us"])),
        "value_wh": wh(r["value_mwh"]),
        "previous_wh": wh(r["previous_mwh"]),
        "delta_wh": wh(r["delta_mwh"]),
        "credited_wh": wh(r["credited_mwh"] or 0),
        "decided_at": None if r["decided_us"] is None else rfc3339(int(r["decided_us"])),
    }


def all_anomalies(conn: Connection) -> list[dict[str, Any]]:
    """Every anomaly, in id order."""
    return [
        anomaly_item(r._mapping)
        for r in conn.execute(select(t.anomalies).order_by(t.anomalies.c.id))
    ]


def anomaly_row(conn: Connection, anomaly_id: int) -> Row[Any] | None:
    """The stored anomaly with this id, if any."""
    return conn.execute(select(t.anomalies).where(t.anomalies.c.id == anomaly_id)).first()
