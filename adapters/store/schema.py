"""The store's tables (SQLAlchemy Core). Times are integer µs since the epoch (UTC) and
energy integer mWh, so SQLite and PostgreSQL hold exactly the same numbers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only makes an INTEGER PRIMARY KEY the rowid (auto-increment, 64-bit anyway).
Id = BigInteger().with_variant(Integer(), "sqlite")


class ExactInt(TypeDecorator[int]):
    """Token units: integers that may exceed 64 bits (10^decimals with decimals ≤ 18).

    PostgreSQL keeps them as NUMERIC(78, 0); SQLite, whose INTEGER is 64-bit and whose
    NUMERIC silently becomes a float, keeps their decimal text.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """NUMERIC on PostgreSQL, TEXT elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """int → the column's representation."""
        if value is None:
            return None
        if dialect.name == "postgresql":
            return int(value)
        return str(int(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        """Back to a Python int, exactly."""
        return None if value is None else int(value)


readings = Table(
    "readings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("energy_mwh", BigInteger),
    Column("power_mw", BigInteger),
    Column("extra", Text),  # JSON {field: "decimal text"} for the other numeric fields
    Column("range_mwh", BigInteger),  # energy register range, for rollovers (Modbus only)
    Column("received_us", BigInteger, nullable=False),
    Index("ix_readings_device_ts", "device", "ts_us"),
    # An id once handed out is never reused, even after the newest readings are pruned:
    # consumers read "every id after N" (migration 0003; PostgreSQL's sequence already is).
    sqlite_autoincrement=True,
)

devices = Table(
    "devices",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("last_energy_ts_us", BigInteger),
    Column("last_ts_us", BigInteger),
    Column("last_reading_id", BigInteger),
    Column("readings", BigInteger, nullable=False, default=0),
    Column("rejected", BigInteger, nullable=False, default=0),
)

rejected_readings = Table(
    "rejected_readings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("ts_us", BigInteger),
    Column("received_us", BigInteger, nullable=False),
    Column("reason", String(40), nullable=False),
    Column("field", String(64)),
    Column("value", Text),
    Index("ix_rejected_readings_device", "device"),
)

anomalies = Table(
    "anomalies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("plant", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(12), nullable=False),
    Column("reading_id", BigInteger, nullable=False),
    Column("reading_at_us", BigInteger, nullable=False),
    Column("value_mwh", BigInteger, nullable=False),
    Column("previous_mwh", BigInteger),
    Column("delta_mwh", BigInteger),
    Column("credited_mwh", BigInteger, nullable=False, default=0),
    Column("created_us", BigInteger, nullable=False),
    Column("decided_us", BigInteger),
    UniqueConstraint("kind", "device", "reading_id"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("anomaly_id", BigInteger, ForeignKey("anomalies.id"), nullable=False, unique=True),
    Column("accept", Boolean, nullable=False),
    Column("decided_us", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),  # last reading id committed before it
)

# Clock reset decisions (docs/accounting.md, "Clocks"): replayed at `position` like the
# decisions on anomalies; `seen_*` is the device's newest rejected reading when decided.
clock_resets = Table(
    "clock_resets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("position", BigInteger, nullable=False),  # the device's last stored reading id
    Column("decided_us", BigInteger, nullable=False),
    Column("seen_mwh", BigInteger),
    Column("seen_at_us", BigInteger),
    # the newest rejected reading's id (any device) when decided: the episode's end
    Column("rejected_upto", BigInteger),
)

shares = Table(
    "shares",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("plant", String(64), nullable=False),
    Column("backer", String(128), nullable=False),
    Column("weight", Text, nullable=False),  # exact decimal text
    Column("valid_from_us", BigInteger, nullable=False),
    Column("stored_us", BigInteger, nullable=False),
    Index("ix_shares_plant_backer", "plant", "backer"),
)

mints = Table(
    "mints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("plant", String(64), nullable=False),
    Column("mwh_index", BigInteger, nullable=False),
    Column("completed_at_us", BigInteger, nullable=False),
    Column("units", ExactInt, nullable=False),
    Column("register_pos", BigInteger, nullable=False),  # last share row id it saw
    Column("undistributed_after", ExactInt, nullable=False),
    Column("committed_us", BigInteger, nullable=False),
    Column("event", Text, nullable=False),  # the push body, fixed at commit (docs/platform.md)
    Column("state_before", Text, nullable=False),  # ledger state replays can start from
    UniqueConstraint("plant", "mwh_index"),
)

credits = Table(
    "credits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("plant", String(64), nullable=False),
    Column("mwh_index", BigInteger, nullable=False),
    Column("backer", String(128), nullable=False),
    Column("units", ExactInt, nullable=False),
    Index("ix_credits_plant_mwh", "plant", "mwh_index"),
)

balances = Table(
    "balances",
    metadata,
    Column("plant", String(64), primary_key=True),
    Column("backer", String(128), primary_key=True),
    Column("units", ExactInt, nullable=False),
)

energy_buckets = Table(
    "energy_buckets",
    metadata,
    Column("plant", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("start_us", BigInteger, primary_key=True),  # 5-minute bucket, by P's timestamp
    Column("e_mwh", BigInteger, nullable=False),
)

# The same accepted energy per plant and UTC hour, for production over long ranges.
energy_hourly = Table(
    "energy_hourly",
    metadata,
    Column("plant", String(64), primary_key=True),
    Column("start_us", BigInteger, primary_key=True),  # UTC hour, by P's timestamp
    Column("e_mwh", BigInteger, nullable=False),
)

positions = Table(
    "positions",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

accountant = Table(
    "accountant",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("state", Text, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

power_buckets = Table(
    "power_buckets",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("start_us", BigInteger, primary_key=True),  # 5-minute bucket of the reading's ts
    Column("sum_mw", BigInteger, nullable=False),  # Σ power_w of its readings, in mW
    Column("n", BigInteger, nullable=False),  # how many readings: average = sum_mw / n
)

# Readings as the export will send them: line protocol rendered when they are stored
# (enabled with [influxdb]), one row per group of at most `batch_size` readings stored
# together. A row covers exactly the readings with after_id < id <= last_id (writers are
# serialized, so no other reading falls between), so the export can send whole rows in
# order without reading or formatting the readings again. Rows the export position has
# passed are deleted while the export is idle (or by the retention job when there is no
# export). Readings without a row (stored while export was off) are formatted from
# `readings` instead. docs/export.md.
export_outbox = Table(
    "export_outbox",
    metadata,
    Column("last_id", Id, primary_key=True, autoincrement=False),
    Column("after_id", BigInteger, nullable=False),
    Column("readings", Integer, nullable=False),
    Column("points", Integer, nullable=False),  # lines in body (a reading without fields has none)
    Column("body", LargeBinary),  # NULL when points = 0
    # The export decides a batch's rows from this index alone, then reads their bodies
    # once: the rows' own pages (bodies inline) are not read twice.
    Index("ix_export_outbox_runs", "last_id", "after_id", "readings", "points"),
)

export_rejects = Table(
    "export_rejects",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("measurement", String(20), nullable=False),  # reading | mint
    Column("line", Text, nullable=False),  # the line protocol the server refused
    Column("reason", Text, nullable=False),  # the server's status and message
    Column("created_us", BigInteger, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("plant", String(64), primary_key=True),
    Column("mwh_index", BigInteger, primary_key=True),
    Column("status", String(12), nullable=False),  # pending | delivered | rejected
    Column("attempts", BigInteger, nullable=False, default=0),  # since last (re)queued
    Column("next_attempt_us", BigInteger, nullable=False),  # backoff survives restarts
    Column("last_status", Integer),  # HTTP status of the last answer; NULL: no answer
    Column("last_error", Text),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_deliveries_status", "status"),
)

# Milestone and challenge events (docs/milestones.md): stored once (event_id is unique),
# in the transaction of the mint that causes them, or of the accounting run that finds a
# challenge missed. Each plant's events are pushed after the mint `after_mint` (0: before
# any mint), in id order among those following the same mint.
events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("plant", String(64), nullable=False),
    Column("event_id", String(160), nullable=False, unique=True),  # <plant>:milestone:<mwh> …
    Column("kind", String(12), nullable=False),  # milestone | challenge
    Column("goal", String(64), nullable=False),  # the milestone's mwh or the challenge's id
    Column("status", String(8), nullable=False),  # reached | missed
    Column("at_us", BigInteger, nullable=False),  # reached_at, or the challenge's `at`
    Column("after_mint", BigInteger, nullable=False),
    # A challenge missed by the clock: the accountant's position and last decision then,
    # where a replay puts it back (NULL for an event caused by a mint).
    Column("position", BigInteger),
    Column("decision_id", BigInteger),
    Column("body", Text, nullable=False),  # the push body, fixed at commit (docs/platform.md)
    Column("committed_us", BigInteger, nullable=False),
    Index("ix_events_plant_order", "plant", "after_mint", "id"),
)

# How the delivery of each event stands, as `deliveries` does for mints.
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("event", BigInteger, ForeignKey("events.id"), primary_key=True, autoincrement=False),
    Column(
        "status", String(12), nullable=False
    ),  # pending | delivered | rejected (docs/platform.md)
    Column("attempts", BigInteger, nullable=False, default=0),  # since last (re)queued
    Column("next_attempt_us", BigInteger, nullable=False),  # backoff survives restarts
    Column("last_status", Integer),  # HTTP status of the last answer; NULL: no answer
    Column("last_error", Text),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_event_deliveries_status", "status"),
)

# The verifiable ledger (docs/verification.md): each plant's mints as an append-only
# Merkle log. One row per leaf, written in the transaction of its mint and never
# rewritten; leaf index = mwh_index - 1.
log_leaves = Table(
    "log_leaves",
    metadata,
    Column("plant", String(64), primary_key=True),
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf", Text, nullable=False),  # the leaf bytes: canonical JSON (ASCII)
    Column("leaf_hash", LargeBinary, nullable=False),  # SHA-256(0x00 ‖ leaf), 32 bytes
    # The mint's credits tree at tile level (docs/storage.md, "The log"): the levels of
    # the tree over the hashes of its runs of 2^GROUP_HEIGHT leaves (rewards/tlog/leaves.py;
    # the last run may be shorter), concatenated from the runs' level up, the
    # backer of each run's first leaf ("\n"-separated) and the id of the mint's first
    # credit row: a backer's proof finds its run, reads that run's credit rows by id and
    # takes every higher node from here, never the whole tree.
    Column("credits_tiles", LargeBinary, nullable=False),
    Column("credits_runs", Text, nullable=False),
    Column("credits_first_id", BigInteger),  # NULL: the mint credited nobody
)

# The signed checkpoint of each size the log had (one per mint; after a log is built
# for mints from before it, one for the size it was built to).
log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("plant", String(64), primary_key=True),
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),  # 32 bytes
    Column("note", Text, nullable=False),  # the signed note, as pushed and served
    Column("signed_us", BigInteger, nullable=False),
)

# Every verifier key that signed a plant's checkpoints, from the first size it signed:
# after a key is replaced, `ledger verify` still checks the older checkpoints.
log_keys = Table(
    "log_keys",
    metadata,
    Column("plant", String(64), primary_key=True),
    Column("vkey", String(255), primary_key=True),
    Column("first_size", BigInteger, nullable=False),
)
