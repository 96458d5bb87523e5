"""The shapes of the API's answers, for its OpenAPI document (docs/platform.md).

Routes build their bodies as plain dicts of exact values and send them with `ExactJSON`;
these models only describe them. Energy and power are JSON numbers written from exact
decimals (e.g. 1234.567 Wh); token `units` are integers that may exceed 2^53 (JavaScript
clients should read `amount`, a decimal string with exactly `decimals` digits).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

ExactNumber = Annotated[
    Decimal, WithJsonSchema({"type": "number", "description": "exact decimal number"})
]
Time = Annotated[
    str, Field(description="RFC 3339, UTC, with Z", json_schema_extra={"format": "date-time"})
]
Cursor = Annotated[
    str | None,
    Field(description="pass as `after` for the next page; null on the last page"),
]


class Error(BaseModel):
    """Every error answer."""

    error: str = Field(description="what is wrong, naming the parameter")


class Money(BaseModel):
    """A token quantity."""

    units: int = Field(description="integer base units (10^decimals per token)")
    amount: str = Field(description="decimal string with exactly `decimals` digits")


class ImpactOut(BaseModel):
    """The plant's impact figures (docs/milestones.md, "Impact"), exact, with their source."""

    co2_avoided_kg: ExactNumber = Field(
        description="E in kWh × co2_g_per_kwh / 1000, rounded half to even to 0.001"
    )
    households: ExactNumber | None = Field(
        description="E in kWh / household_kwh_per_year, rounded half to even to 0.1; "
        "null without household_kwh_per_year"
    )
    co2_g_per_kwh: ExactNumber
    source: str = Field(description="where the emission factor comes from")


class PlantOut(BaseModel):
    """One plant and its totals."""

    id: str
    name: str
    capacity_kw: ExactNumber
    energy_wh: ExactNumber = Field(description="accounted energy E (pending readings excluded)")
    mwh_completed: int
    minted: Money
    last_reading_at: Time | None
    impact: ImpactOut | None = Field(description="null without [plants.impact]")


class Point(BaseModel):
    """Energy accounted in [t, t + step)."""

    t: Time
    energy_wh: ExactNumber
    avg_power_w: ExactNumber


class ProductionOut(BaseModel):
    """The production series of a plant."""

    plant: str
    step: Literal["5m", "1h", "1d"]
    points: list[Point]


class BalanceOut(BaseModel):
    """A backer's credited total."""

    backer: str
    units: int
    amount: str
    co2_avoided_kg: ExactNumber | None = Field(
        default=None,
        description="with [plants.impact] only: units / U × co2_g_per_kwh, the CO2 of the "
        "MWh-fraction the units stand for, rounded half to even to 0.001",
    )


class FactorOut(BaseModel):
    """The emission factor behind every CO2 figure, and its source."""

    co2_g_per_kwh: ExactNumber
    source: str


class BalancesOut(BaseModel):
    """Every backer who held a share in force at some mint, zero balances included."""

    plant: str
    symbol: str
    decimals: int
    undistributed: Money
    balances: list[BalanceOut]
    impact: FactorOut | None = Field(default=None, description="with [plants.impact] only")


class MilestoneOut(BaseModel):
    """A milestone: reached by the plant's mint number `mwh`."""

    mwh: int
    title: str
    reached_at: Time | None = Field(description="that mint's completion time; null: not yet")


class ChallengeOut(BaseModel):
    """A challenge: reached by mint number `goal_mwh` if completed by the deadline."""

    id: str
    title: str
    goal_mwh: int
    deadline: Time
    sponsor: str
    status: Literal["open", "reached", "missed"]
    progress: ExactNumber = Field(
        description="mwh_completed / goal_mwh, at most 1, rounded down to 0.0001"
    )
    at: Time | None = Field(
        description="the completion time of the mint that reached it, or the deadline when "
        "missed; null while open"
    )


class MilestonesOut(BaseModel):
    """A plant's milestones and challenges with their status (docs/milestones.md)."""

    milestones: list[MilestoneOut]
    challenges: list[ChallengeOut]


class CreditOut(BaseModel):
    """One credit row of a mint."""

    id: int
    plant: str
    mwh_index: int
    completed_at: Time
    backer: str
    units: int
    amount: str
    symbol: str


class CreditPage(BaseModel):
    """Credits in id order."""

    items: list[CreditOut]
    next: Cursor


class MintOut(BaseModel):
    """One minted MWh."""

    id: int
    event_id: str = Field(description="`<plant>:<k>`, the push event's id and Idempotency-Key")
    plant: str
    mwh_index: int
    completed_at: Time
    committed_at: Time
    symbol: str
    decimals: int
    units: int
    amount: str
    undistributed: Money = Field(description="the plant's undistributed balance after this mint")


class MintPage(BaseModel):
    """Mints in id order."""

    items: list[MintOut]
    next: Cursor


class AnomalyOut(BaseModel):
    """An anomaly (docs/accounting.md) and what became of it."""

    id: int
    plant: str
    device: str
    kind: Literal["outlier", "counter_reset", "implausible_jump"]
    status: Literal["quarantined", "accepted", "rejected", "recorded"]
    reading_at: Time
    value_wh: ExactNumber
    previous_wh: ExactNumber | None = Field(description="F; null when there was no F yet")
    delta_wh: ExactNumber | None = Field(description="P − F, may be negative")
    credited_wh: ExactNumber = Field(description="what entered E")
    decided_at: Time | None


class AnomalyPage(BaseModel):
    """Anomalies in id order."""

    items: list[AnomalyOut]
    next: Cursor


class Rejection(BaseModel):
    """A device's last rejected reading: why, and when it was rejected."""

    reason: str = Field(description="timestamp_not_after_last, timestamp_in_future, value_…")
    at: Time


class DeviceHealth(BaseModel):
    """A device's state (`clock`: its newest stored reading is ahead of the gateway's clock)."""

    state: Literal["ok", "stale", "error", "clock"]
    last_reading_at: Time | None
    rejected: int = Field(description="readings rejected since the daemon started")
    last_rejection: Rejection | None


class StoreHealth(BaseModel):
    """The store: a write failed since the last good commit (`error`), or its disk is low."""

    state: Literal["ok", "error", "low_space"]
    free_bytes: int | None = Field(description="free where an embedded store lives; null: a server")
    last_error: str | None


class JobHealth(BaseModel):
    """A job (accountant, export, push, register-pull): `failing` after 3 failures in a row."""

    state: Literal["ok", "failing"]
    failures: int = Field(description="failures in a row")
    last_error: str | None


class SyncHealth(BaseModel):
    """Mint events not yet acknowledged, and parked ones."""

    pending: int
    rejected: int


class ExportHealth(BaseModel):
    """Rows not yet exported to the time-series store."""

    pending: int


class HealthOut(BaseModel):
    """GET /healthz."""

    status: Literal["ok", "degraded"]
    reasons: list[str] = Field(description="each cause of `degraded`, in a sentence")
    devices: dict[str, DeviceHealth]
    store: StoreHealth
    jobs: dict[str, JobHealth]
    sync: SyncHealth
    export: ExportHealth


class LogKeyOut(BaseModel):
    """The plant's log origin and the gateway's verifier key (docs/verification.md)."""

    origin: str = Field(description="<origin_prefix>/<plant id>, also the key's name")
    vkey: str = Field(description="<name>+<8 hex digits of key id>+<base64(0x01 ‖ public key)>")


class LogEntryOut(BaseModel):
    """One leaf of the log: mint mwh_index = index + 1."""

    index: int
    leaf: dict[str, Any] = Field(description="the leaf as a JSON object (docs/verification.md)")


class LogEntriesOut(BaseModel):
    """Leaves in index order; `next`: the index to ask from, null at the end."""

    items: list[LogEntryOut]
    next: int | None


class ConsistencyOut(BaseModel):
    """An RFC 9162 consistency proof from tree size `from` to tree size `to`."""

    from_: int = Field(alias="from")
    to: int
    proof: list[str] = Field(description="hex SHA-256 hashes")


class PlacedOut(BaseModel):
    """The backer's leaf in a mint's register or credits tree, with its inclusion proof."""

    weight: str | None = None
    units: int | None = None
    index: int
    inclusion: list[str]


class BundleMintOut(BaseModel):
    """One mint of a proof bundle."""

    leaf: dict[str, Any]
    leaf_index: int
    inclusion: list[str]
    register_: PlacedOut | None = Field(alias="register")
    credit: PlacedOut | None


class BundleConsistencyOut(BaseModel):
    """Consistency from an older size the backer saw (`since`)."""

    from_: int = Field(alias="from")
    proof: list[str]


class BundleOut(BaseModel):
    """A backer's proof bundle over every mint of the plant; `python3 verify.py` checks it."""

    version: int
    plant: str
    backer: str
    origin: str
    checkpoint: str = Field(description="the signed note of size tree_size")
    tree_size: int
    mints: list[BundleMintOut]
    consistency: BundleConsistencyOut | None = None
