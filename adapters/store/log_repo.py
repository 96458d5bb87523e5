"""The verifiable ledger's rows (schema.log_*), inside a transaction the caller holds.

docs/verification.md says what the log proves; docs/storage.md what it costs on disk.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select

from heliod.adapters.store import ledger_repo
from heliod.adapters.store import schema as t
from heliod.rewards.verify import MintRecord


@dataclass(frozen=True, slots=True)
class LeafRow:
    """One stored leaf of a plant's log."""

    index: int
    leaf: str  # canonical JSON
    leaf_hash: bytes
    credits_tiles: bytes
    credits_runs: list[str]  # the backer of each run's first leaf
    credits_first_id: int | None


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """One stored signed checkpoint."""

    size: int
    root: bytes
    note: str


def size(conn: Connection, plant: str) -> int:
    """How many leaves the plant's log holds."""
    lv = t.log_leaves.c
    return int(conn.execute(select(func.count()).where(lv.plant == plant)).scalar() or 0)


def leaf_hashes(conn: Connection, plant: str, upto: int | None = None) -> list[bytes]:
    """The leaf hashes of the plant's log, in order (the first `upto` when given)."""
    lv = t.log_leaves.c
    stmt = select(lv.leaf_hash).where(lv.plant == plant)
    if upto is not None:
        stmt = stmt.where(lv.leaf_index < upto)
    return [bytes(h) for (h,) in conn.execute(stmt.order_by(lv.leaf_index))]


def insert_leaf(conn: Connection, plant: str, row: LeafRow) -> None:
    """Append one leaf (the primary key refuses a second leaf at the same index)."""
    # As parameters (ledger_repo.insert_mint says why): the tiles of a large mint are MBs.
    conn.execute(
        insert(t.log_leaves),
        {
            "plant": plant,
            "leaf_index": row.index,
            "leaf": row.leaf,
            "leaf_hash": row.leaf_hash,
            "credits_tiles": row.credits_tiles,
            "credits_runs": "\n".join(row.credits_runs),
            "credits_first_id": row.credits_first_id,
        },
    )


def insert_checkpoint(
    conn: Connection, plant: str, checkpoint: CheckpointRow, *, now_us: int
) -> None:
    """Store the signed checkpoint of a size the log reached."""
    conn.execute(
        insert(t.log_checkpoints).values(
            plant=plant,
            size=checkpoint.size,
            root=checkpoint.root,
            note=checkpoint.note,
            signed_us=now_us,
        )
    )


def record_key(conn: Connection, plant: str, vkey: str, first_size: int) -> bool:
    """Remember a verifier key the first time it signs one of the plant's checkpoints;
    True when it is new."""
    k = t.log_keys.c
    known = conn.execute(select(k.vkey).where(k.plant == plant, k.vkey == vkey)).first()
    if known is not None:
        return False
    conn.execute(insert(t.log_keys).values(plant=plant, vkey=vkey, first_size=first_size))
    return True


def keys(conn: Connection, plant: str) -> list[tuple[str, int]]:
    """(verifier key, first size it signed) of every key that signed the plant's log."""
    k = t.log_keys.c
    stmt = select(k.vkey, k.first_size).where(k.plant == plant).order_by(k.first_size, k.vkey)
    return [(str(v), int(s)) for v, s in conn.execute(stmt)]


def newest_checkpoint(conn: Connection, plant: str) -> CheckpointRow | None:
    """The checkpoint of the largest size (None before the first mint)."""
    c = t.log_checkpoints.c
    row = conn.execute(
        select(c.size, c.root, c.note).where(c.plant == plant).order_by(c.size.desc()).limit(1)
    ).first()
    return None if row is None else CheckpointRow(int(row[0]), bytes(row[1]), str(row[2]))


def checkpoint(conn: Connection, plant: str, tree_size: int) -> CheckpointRow | None:
    """The stored checkpoint of one size (None: none was signed at that size)."""
    c = t.log_checkpoints.c
    row = conn.execute(
        select(c.size, c.root, c.note).where(c.plant == plant, c.size == tree_size)
    ).first()
    return None if row is None else CheckpointRow(int(row[0]), bytes(row[1]), str(row[2]))


def checkpoints(conn: Connection, plant: str) -> Iterator[CheckpointRow]:
    """Every stored checkpoint of the plant, by size."""
    c = t.log_checkpoints.c
    stmt = select(c.size, c.root, c.note).where(c.plant == plant).order_by(c.size)
    for s, root, note in conn.execute(stmt):
        yield CheckpointRow(int(s), bytes(root), str(note))


def leaves(conn: Connection, plant: str, start: int, limit: int) -> list[tuple[int, str]]:
    """(index, leaf JSON) of up to `limit` leaves from index `start`."""
    lv = t.log_leaves.c
    stmt = (
        select(lv.leaf_index, lv.leaf)
        .where(lv.plant == plant, lv.leaf_index >= start)
        .order_by(lv.leaf_index)
        .limit(limit)
    )
    return [(int(i), str(leaf)) for i, leaf in conn.execute(stmt)]


def leaf_rows(conn: Connection, plant: str, upto: int | None = None) -> Iterator[LeafRow]:
    """Every stored leaf of the plant with what proofs need, in order (the first `upto`)."""
    lv = t.log_leaves.c
    stmt = select(
        lv.leaf_index, lv.leaf, lv.leaf_hash, lv.credits_tiles, lv.credits_runs, lv.credits_first_id
    ).where(lv.plant == plant)
    if upto is not None:
        stmt = stmt.where(lv.leaf_index < upto)
    for i, leaf, h, tiles, runs, first in conn.execute(stmt.order_by(lv.leaf_index)):
        first_id = None if first is None else int(first)
        starts = str(runs).split("\n") if runs else []
        yield LeafRow(int(i), str(leaf), bytes(h), bytes(tiles), starts, first_id)


def credit_span(conn: Connection, plant: str, mwh_index: int, count: int) -> int | None:
    """The id of the mint's first credit row when its `count` rows have consecutive ids
    (as the accountant writes them, sorted by backer in one statement), else None."""
    c = t.credits.c
    where = (c.plant == plant, c.mwh_index == mwh_index)
    first = conn.execute(select(c.id).where(*where).order_by(c.id).limit(1)).scalar()
    last = conn.execute(select(c.id).where(*where).order_by(c.id.desc()).limit(1)).scalar()
    if first is None or last is None or int(last) - int(first) + 1 != count:
        return None
    return int(first)


def credit_runs(
    conn: Connection, spans: Sequence[tuple[int, int]], chunk: int = 900
) -> list[list[tuple[int, str, int]]]:
    """For each half-open span [start, stop) of credit row ids, the (id, backer, units)
    of its rows in id order: primary-key lookups, `chunk` ids per statement, through the
    driver's own cursor inside the caller's transaction (a bundle reads one short run
    for each of thousands of mints, and SQLAlchemy's per-statement and per-row work would
    cost more than the rows)."""
    ids = sorted({i for start, stop in spans for i in range(start, stop)})
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    rows: list[tuple[int, str, int]] = []
    try:
        for at in range(0, len(ids), chunk):
            part = ids[at : at + chunk]
            marks = ", ".join([mark] * len(part))  # placeholders only: the ids are parameters
            sql = f"SELECT id, backer, units FROM credits WHERE id IN ({marks}) ORDER BY id"  # noqa: S608
            cursor.execute(sql, part)
            rows.extend(cursor.fetchall())
    finally:
        cursor.close()
    found = [r[0] for r in rows]
    return [rows[bisect_left(found, a) : bisect_left(found, b)] for a, b in spans]


def mints_after(conn: Connection, plant: str, after: int) -> list[MintRecord]:
    """The plant's stored mints with an MWh number above `after`, in order."""
    return ledger_repo.mint_records(conn, plant, after)


def credits_of(conn: Connection, plant: str, mwh_index: int) -> dict[str, int]:
    """The credits of one mint, per backer."""
    c = t.credits.c
    out: dict[str, int] = {}
    stmt = select(c.backer, c.units).where(c.plant == plant, c.mwh_index == mwh_index)
    for backer, units in conn.execute(stmt):
        out[backer] = out.get(backer, 0) + int(units)
    return out
