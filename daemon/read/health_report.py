"""The one health judgement: facts in, the /healthz body with its `reasons` out.

`assemble` decides (docs/operations.md, "Health"): `degraded` when a device is not ok,
a push event is parked as rejected, the store is not ok (a write failed since the last
good commit, or less than 5 % and less than 100 MB free where it lives), a job has failed
3 times in a row, a plant minted with no backer in force, or the platform's share
register answer was refused (until one is applied); each cause is one sentence
in `reasons`, saying what to do. Pure: the facts come from `read/health.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heliod.rewards.freshness import DEVICE_STATES, STALE_INTERVALS

FAILING_AFTER = 3  # failures in a row that make a job `failing`
LOW_SPACE_PERCENT = 5
LOW_SPACE_BYTES = 100_000_000  # 100 MB


def store_state(store: Mapping[str, Any]) -> str:
    """ok, error (a write failed since the last good commit) or low_space."""
    if store.get("failing"):
        return "error"
    free, total = store.get("free_bytes"), store.get("total_bytes")
    if free is None or not total:
        return "ok"  # a server database: its space is the server's to watch
    low = free * 100 < total * LOW_SPACE_PERCENT and free < LOW_SPACE_BYTES
    return "low_space" if low else "ok"


def _device_reason(device: str, v: Mapping[str, Any], now: str | None) -> str:
    state = v["state"]
    if state == "clock":
        return (
            f"Device {device}: its newest stored reading ({v.get('newest_stored_at')}) is "
            f"more than 5 minutes ahead of this gateway's clock ({now}), so its new readings "
            f"are rejected as not after it ({v.get('rejected', 0)} since start). Set the "
            f"clock right, then run `heliod readings reset-clock --device {device}`."
        )
    if state == "stale":
        since = v.get("last_reading_at") or "the daemon's start"
        every = v.get("interval")
        span = (
            f"{STALE_INTERVALS} intervals of {every}" if every else f"{STALE_INTERVALS} intervals"
        )
        return f"Device {device}: no reading since {since} ({span} or more)."
    return f"Device {device}: its link or the device fails; the log says why."


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def assemble(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The /healthz body of these facts: every state judged, `reasons` in sentences."""
    reasons: list[str] = []
    now = facts.get("now")
    devices: dict[str, dict[str, Any]] = {}
    for device, v in dict(facts.get("devices", {})).items():
        state = str(v.get("state")) if v.get("state") in DEVICE_STATES else "error"
        last = v.get("last_rejection")
        devices[str(device)] = {
            "state": state,
            "last_reading_at": v.get("last_reading_at"),
            "rejected": int(v.get("rejected", 0)),
            "last_rejection": None if not last else {"reason": last["reason"], "at": last["at"]},
        }
        if state != "ok":
            reasons.append(_device_reason(str(device), {**v, "state": state}, now))
    sync = facts.get("sync", {})
    rejected = int(sync.get("rejected", 0))
    if rejected:
        reasons.append(
            f"The platform refused {rejected} push event{'s' if rejected != 1 else ''}, "
            "parked: `heliod sync status` lists them, `heliod sync retry` sends them again."
        )
    store_facts = dict(facts.get("store", {}))
    state = store_state(store_facts)
    free = store_facts.get("free_bytes")
    store = {"state": state, "free_bytes": free, "last_error": store_facts.get("last_error")}
    if state == "error":
        reasons.append(
            f"The store failed to write: {store['last_error']}. Nothing acknowledged is lost: "
            "readings wait at their source (the MQTT broker, the poller's buffer) until it "
            "writes again. Free space on its disk if it is full."
        )
    elif state == "low_space" and free is not None:
        total = int(store_facts["total_bytes"])
        reasons.append(
            f"The store's disk has {_mb(free)} free ({free * 100 / total:.1f} % of "
            f"{_mb(total)}): heliod stops storing when it is full. Free space there."
        )
    jobs: dict[str, dict[str, Any]] = {}
    for name, v in sorted(dict(facts.get("jobs", {})).items()):
        failures = int(v.get("failures", 0))
        failing = failures >= FAILING_AFTER
        jobs[name] = {
            "state": "failing" if failing else "ok",
            "failures": failures,
            "last_error": v.get("last_error"),
        }
        if failing:
            error = str(v.get("last_error") or "no error was recorded").rstrip(".")
            reasons.append(f"Job {name} failed {failures} times in a row: {error}.")
    for plant, v in sorted(dict(facts.get("unbacked", {})).items()):
        reasons.append(
            f"Plant {plant} minted MWh {v['mwh_index']} (completed {v['completed_at']}) with "
            "no backer in force: its units stay undistributed for good. Import the share "
            "register (`heliod backers import`); the next mints use it."
        )
    for plant, v in sorted(dict(facts.get("register", {})).items()):
        if v.get("refusal"):
            refusal = str(v["refusal"]).rstrip(".")
            reasons.append(
                f"The platform's share register answer for plant {plant} was refused: "
                f"{refusal}. Nothing of it was applied."
            )
    export = dict(facts.get("export", {}))
    export["pending"] = int(export.get("pending", 0))
    return {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "devices": devices,
        "store": store,
        "jobs": jobs,
        "sync": {"pending": int(sync.get("pending", 0)), "rejected": rejected},
        "export": export,
    }
