"""The verifiable ledger read back (docs/verification.md): checkpoints, entries,
consistency proofs and a backer's proof bundle, for the API and the CLI alike.

A bundle covers every mint of the plant. It is built from what the log stores
(docs/storage.md, "The log"): the leaves and their hashes (the log's tree), each mint's
register tree rebuilt once per distinct set of weights in force, and for its credits
tree only the backer's run of 16 leaves, read by id, under the stored run roots.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from heliod.adapters.store import ledger_repo, log_repo
from heliod.adapters.store import schema as t
from heliod.rewards.register import Register, RegisterKey
from heliod.rewards.tlog.leaves import GROUP_HEIGHT, BackerTree, Placed, credit_leaf_hashes
from heliod.rewards.tlog.tree import MerkleTree, edge_inclusion, edge_levels, stored_inclusion
from heliod.rewards.tlog.verify import BUNDLE_VERSION, EMPTY_ROOT, HASH_SIZE

GROUP_WIDTH = 1 << GROUP_HEIGHT

MAX_ENTRIES = 1000  # per page of GET …/log/entries


class LogUnavailable(LookupError):
    """What was asked is not in the log (no mint yet, a size it never had)."""


class LogCorrupt(RuntimeError):
    """The stored log disagrees with the stored ledger; `heliod ledger verify` says where."""


def newest_checkpoint(conn: Connection, plant: str) -> str | None:
    """The plant's newest signed checkpoint (None before its first mint)."""
    row = log_repo.newest_checkpoint(conn, plant)
    return None if row is None else row.note


def entries(conn: Connection, plant: str, start: int, limit: int) -> dict[str, Any]:
    """`{"items": [{"index", "leaf"}], "next"}`: up to `limit` leaves from index `start`."""
    rows = log_repo.leaves(conn, plant, start, limit + 1)
    items = [{"index": i, "leaf": json.loads(leaf)} for i, leaf in rows[:limit]]
    return {"items": items, "next": rows[limit][0] if len(rows) > limit else None}


def consistency(conn: Connection, plant: str, first: int, second: int | None) -> dict[str, Any]:
    """`{"from", "to", "proof"}` between two sizes of the log (to: the newest size)."""
    newest = log_repo.newest_checkpoint(conn, plant)
    size = 0 if newest is None else newest.size
    to = size if second is None else second
    if not 0 < first <= to <= size:
        raise LogUnavailable(
            f"no consistency proof from size {first} to size {to}: the log has size {size} "
            "(need 0 < from <= to <= size)"
        )
    tree = MerkleTree(log_repo.leaf_hashes(conn, plant, to))
    return {"from": first, "to": to, "proof": [h.hex() for h in tree.consistency(first, to)]}


def bundle(
    conn: Connection, plant: str, backer: str, origin: str, since: int | None = None
) -> dict[str, Any]:
    """The backer's proof bundle over every mint of the plant, against the newest checkpoint
    (the same bundle as `make_bundle` of the trees rebuilt whole, built from the stored
    leaves and tiles: one query for the leaves, one per 900 credit rows read)."""
    newest = log_repo.newest_checkpoint(conn, plant)
    if newest is None:
        raise LogUnavailable(f"{plant} has no mint yet: its log is empty")
    if since is not None and not 0 <= since <= newest.size:
        raise LogUnavailable(f"since {since} is outside 0..{newest.size}, the log's sizes")
    rows = list(log_repo.leaf_rows(conn, plant, newest.size))
    if len(rows) != newest.size:
        raise LogCorrupt(
            f"{plant}: the log holds {len(rows)} leaves under a checkpoint of size {newest.size}"
        )
    hashes = [r.leaf_hash for r in rows]
    levels = edge_levels(hashes)
    if (levels[-1][0] if hashes else EMPTY_ROOT) != newest.root:
        raise LogCorrupt(f"{plant}: the stored leaves do not give the newest checkpoint's root")
    hex_levels = [[h.hex() for h in level] for level in levels]
    leaves = [json.loads(r.leaf) for r in rows]
    registers = _registers(conn, plant, backer, leaves)
    credits = _credits(conn, plant, backer, rows, leaves)
    out: dict[str, Any] = {
        "version": BUNDLE_VERSION,
        "plant": plant,
        "backer": backer,
        "origin": origin,
        "checkpoint": newest.note,
        "tree_size": newest.size,
        "mints": [
            {
                "leaf": leaf,
                "leaf_index": i,
                "inclusion": edge_inclusion(hex_levels, i),
                "register": registers[i],
                "credit": credits[i],
            }
            for i, leaf in enumerate(leaves)
        ],
    }
    if since is not None:
        proof = MerkleTree(hashes).consistency(since) if since else []
        out["consistency"] = {"from": since, "proof": [h.hex() for h in proof]}
    return out


def _placed(value_key: str, value: str | int, index: int, proof: list[bytes]) -> dict[str, Any]:
    return {value_key: value, "index": index, "inclusion": [h.hex() for h in proof]}


def _registers(
    conn: Connection, plant: str, backer: str, leaves: Sequence[dict[str, Any]]
) -> list[dict[str, Any] | None]:
    """The backer's weight in each mint's register tree, each distinct tree built once
    (and the backer's place in it shared by the mints it applies to)."""
    register = Register(ledger_repo.share_rows(conn, plant))
    mints = {m.mwh_index: m for m in log_repo.mints_after(conn, plant, 0)}
    trees: dict[RegisterKey, tuple[str, dict[str, Any] | None]] = {}
    out: list[dict[str, Any] | None] = []
    for leaf in leaves:
        k = int(leaf["mwh_index"])
        mint = mints.get(k)
        if mint is None:
            raise LogCorrupt(f"{plant}: leaf {k - 1} has no stored mint {k}")
        key = register.key_at(mint.completed_at_us, mint.register_pos)
        found = trees.get(key)
        if found is None:
            weights = register.weights_at(mint.completed_at_us, mint.register_pos)
            tree = BackerTree.register(weights)
            placed = tree.place(backer)
            found = trees[key] = (
                tree.root.hex(),
                None if placed is None else _placed("weight", *_fields(placed)),
            )
            if len(trees) > 64:  # bounded: mints in order reuse the newest trees
                trees.pop(next(iter(trees)))
        if found[0] != leaf["register_root"]:
            raise LogCorrupt(f"{plant}: mint {k}'s register tree differs from its log leaf")
        out.append(found[1])
    return out


def _fields(placed: Placed) -> tuple[str | int, int, list[bytes]]:
    return placed.value, placed.index, placed.inclusion


def _credits(
    conn: Connection,
    plant: str,
    backer: str,
    rows: Sequence[log_repo.LeafRow],
    leaves: Sequence[dict[str, Any]],
) -> list[dict[str, Any] | None]:
    """The backer's credit in each mint's credits tree, from its group of 2^GROUP_HEIGHT
    leaves and the stored levels above the groups."""
    wanted: dict[int, tuple[int, int]] = {}  # leaf index -> the group's [start, stop)
    for row, leaf in zip(rows, leaves, strict=True):
        count = int(leaf["credits_count"])
        group = bisect_right(row.credits_runs, backer) - 1
        if count and group >= 0:
            start = group * GROUP_WIDTH
            wanted[row.index] = (start, min(start + GROUP_WIDTH, count))
    read = _read_runs(conn, plant, rows, wanted)
    out: list[dict[str, Any] | None] = []
    for row, leaf in zip(rows, leaves, strict=True):
        span = wanted.get(row.index)
        got = None if span is None else read.get(row.index)
        if span is None or not got:
            out.append(None)
            continue
        units = got
        backers, hashes = credit_leaf_hashes(units)
        if backer not in backers:
            out.append(None)
            continue
        start = span[0]
        at = start + backers.index(backer)
        count = int(leaf["credits_count"])
        group = start >> GROUP_HEIGHT
        try:
            upper, root = stored_inclusion(row.credits_tiles, -(-count >> GROUP_HEIGHT), group)
        except ValueError as e:
            raise LogCorrupt(f"{plant}: mint {row.index + 1}'s credits: {e}") from None
        inner = edge_levels(hashes)
        stored = row.credits_tiles[group * HASH_SIZE : (group + 1) * HASH_SIZE]
        if inner[-1][0] != stored:
            raise LogCorrupt(
                f"{plant}: mint {row.index + 1}'s credits: the leaves read for group {group} "
                "do not hash to its stored root"
            )
        if root.hex() != leaf["credits_root"]:
            raise LogCorrupt(f"{plant}: mint {row.index + 1}'s credits tiles differ from its leaf")
        out.append(_placed("units", units[backer], at, edge_inclusion(inner, at - start) + upper))
    return out


def _read_runs(
    conn: Connection,
    plant: str,
    rows: Sequence[log_repo.LeafRow],
    wanted: dict[int, tuple[int, int]],
) -> dict[int, dict[str, int]]:
    """Backer -> units of each wanted group: by id where the mint's credits have
    consecutive ids, else sorted by backer."""
    spans: list[tuple[int, int]] = []
    owners: list[int] = []  # the leaf index of each span
    out: dict[int, dict[str, int]] = {}
    for row in rows:
        span = wanted.get(row.index)
        if span is None:
            continue
        start, stop = span
        if row.credits_first_id is None:
            out[row.index] = dict(_run_by_order(conn, plant, row.index + 1, start, stop))
            continue
        spans.append((row.credits_first_id + start, row.credits_first_id + stop))
        owners.append(row.index)
    for index, got in zip(owners, log_repo.credit_runs(conn, spans), strict=True):
        out[index] = {str(b): int(u) for _id, b, u in got}
    return out


def _run_by_order(
    conn: Connection, plant: str, mwh_index: int, start: int, stop: int
) -> list[tuple[str, int]]:
    c = t.credits.c
    stmt = (
        select(c.backer, c.units)
        .where(c.plant == plant, c.mwh_index == mwh_index)
        .order_by(c.backer)
        .offset(start)
        .limit(stop - start)
    )
    return [(str(b), int(u)) for b, u in conn.execute(stmt)]
