"""A device's stored readings and what became of each (`heliod readings list`, `readings import`).

Status of a reading (docs/cli.md, "readings list"):
- `pending`: not confirmed yet (the device's P, or newer than what the accountant has read);
- `final`: confirmed and accounted; `outlier`: dropped as an outlier; `counter_reset`,
  `implausible_jump`: confirmed with that anomaly (see `anomalies list`);
- `not accounted`: stored and exported but never accounted (no energy counter, not an
  energy device, or before the plant's reward start);
- `rejected: <reason>`: refused before it was stored (docs/accounting.md, "1. Which
  readings count").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store import schema as t
from heliod.rewards.times import rfc3339
from heliod.rewards.units import mwh_to_wh


@dataclass(frozen=True, slots=True)
class Accounted:
    """How the device is accounted: whether at all, and from when."""

    energy_device: bool
    start_us: int | None  # the plant's reward start (None: from the first reading)


_KEYS_PER_QUERY = 500  # timestamps per IN list: far below any driver's parameter limit


def stored_keys(
    conn: Connection, device: str, times_us: Iterable[int]
) -> set[tuple[int, int | None, int | None]]:
    """(µs, energy mWh, power mW) of the device's stored readings timed at one of these
    times: memory in the file's rows, not in the stored history between them."""
    r = t.readings.c
    wanted = sorted(set(times_us))
    found: set[tuple[int, int | None, int | None]] = set()
    for i in range(0, len(wanted), _KEYS_PER_QUERY):
        rows = conn.execute(
            select(r.ts_us, r.energy_mwh, r.power_mw).where(
                r.device == device, r.ts_us.in_(wanted[i : i + _KEYS_PER_QUERY])
            )
        )
        found.update((int(ts), e, p) for ts, e, p in rows)
    return found


def _fields(energy: int | None, power: int | None, extra: str | None) -> dict[str, Decimal]:
    fields: dict[str, Decimal] = {}
    if energy is not None:
        fields["energy_wh"] = mwh_to_wh(energy)
    if power is not None:
        fields["power_w"] = mwh_to_wh(power)
    if extra:
        fields.update({k: Decimal(v) for k, v in json.loads(extra).items()})
    return fields


def device_readings(
    conn: Connection,
    device: str,
    accounted: Accounted,
    *,
    from_us: int | None,
    to_us: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The device's newest `limit` readings in [from, to], stored or rejected, oldest first."""
    r, x = t.readings.c, t.rejected_readings.c
    stored = select(r.id, r.ts_us, r.energy_mwh, r.power_mw, r.extra).where(r.device == device)
    refused = select(x.ts_us, x.reason, x.field, x.value).where(x.device == device)
    if from_us is not None:
        stored, refused = stored.where(r.ts_us >= from_us), refused.where(x.ts_us >= from_us)
    if to_us is not None:
        stored, refused = stored.where(r.ts_us <= to_us), refused.where(x.ts_us <= to_us)
    rows = conn.execute(stored.order_by(r.ts_us.desc(), r.id.desc()).limit(limit)).all()
    rejected = conn.execute(refused.order_by(x.ts_us.desc(), x.id.desc()).limit(limit)).all()
    a = t.anomalies.c
    kinds = {
        int(reading): str(kind)
        for reading, kind in conn.execute(
            select(a.reading_id, a.kind).where(
                a.device == device, a.reading_id.in_([i for i, *_ in rows])
            )
        )
    }
    state = repo.load_state(conn)
    point = state.devices.get(device)
    pending = point.pending.reading_id if point is not None and point.pending else None
    items: list[tuple[int, int, dict[str, Any]]] = []
    for reading_id, ts_us, energy, power, extra in rows:
        if (
            energy is None
            or not accounted.energy_device
            or (accounted.start_us is not None and ts_us < accounted.start_us)
        ):
            status = "not accounted"
        elif reading_id == pending or reading_id > state.position:
            status = "pending"
        else:
            status = kinds.get(int(reading_id), "final")
        fields = _fields(energy, power, extra)
        items.append((ts_us, 1, {"at": rfc3339(ts_us), "status": status, "fields": fields}))
    for ts_us, reason, field, value in rejected:
        why = f"{reason} ({field} = {value})" if field and value is not None else reason
        items.append(
            (
                ts_us or 0,
                0,
                {
                    "at": None if ts_us is None else rfc3339(ts_us),
                    "status": f"rejected: {why}",
                    "fields": {},
                },
            )
        )
    items.sort(key=lambda item: (item[0], item[1]))
    return [item for *_, item in items[-limit:]]
