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
from heliod.rewards.log_tiles import TILE_HEIGHT, TILE_WIDTH, run_of, runs_tree
from heliod.rewards.register import Register, RegisterKey
from heliod.rewards.tlog.leaves import BackerTree, Placed, credit_leaf_hashes
from heliod.rewards.tlog.note import make_bundle
from heliod.rewards.tlog.tree import MerkleTree, grouped_inclusion

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
    """The backer's proof bundle over every mint of the plant, against the newest checkpoint."""
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
    tree = MerkleTree([r.leaf_hash for r in rows])
    if tree.root() != newest.root:
        raise LogCorrupt(f"{plant}: the stored leaves do not give the newest checkpoint's root")
    leaves = [json.loads(r.leaf) for r in rows]
    registers = _registers(conn, plant, backer, leaves)
    credits = _credits(conn, plant, backer, rows, leaves)
    return make_bundle(
        plant=plant,
        backer=backer,
        origin=origin,
        checkpoint=newest.note,
        leaves=leaves,
        registers=registers,
        credits=credits,
        since=since,
        log=tree,
    )


def _registers(
    conn: Connection, plant: str, backer: str, leaves: Sequence[dict[str, Any]]
) -> list[Placed | None]:
    """The backer's weight in each mint's register tree, each distinct tree built once."""
    register = Register(ledger_repo.share_rows(conn, plant))
    mints = {m.mwh_index: m for m in log_repo.mints_after(conn, plant, 0)}
    trees: dict[RegisterKey, BackerTree] = {}
    out: list[Placed | None] = []
    for leaf in leaves:
        k = int(leaf["mwh_index"])
        mint = mints.get(k)
        if mint is None:
            raise LogCorrupt(f"{plant}: leaf {k - 1} has no stored mint {k}")
        key = register.key_at(mint.completed_at_us, mint.register_pos)
        found = trees.get(key)
        if found is None:
            weights = register.weights_at(mint.completed_at_us, mint.register_pos)
            found = trees[key] = BackerTree.register(weights)
            if len(trees) > 64:  # bounded: mints in order reuse the newest trees
                trees.pop(next(iter(trees)))
        if found.root.hex() != leaf["register_root"]:
            raise LogCorrupt(f"{plant}: mint {k}'s register tree differs from its log leaf")
        out.append(found.place(backer))
    return out


def _credits(
    conn: Connection,
    plant: str,
    backer: str,
    rows: Sequence[log_repo.LeafRow],
    leaves: Sequence[dict[str, Any]],
) -> list[Placed | None]:
    """The backer's credit in each mint's credits tree, from its run and the stored tiles."""
    wanted: dict[int, tuple[int, int, int]] = {}  # leaf index -> (run start, run stop, run)
    for row, leaf in zip(rows, leaves, strict=True):
        count = int(leaf["credits_count"])
        run = bisect_right(row.credits_runs, backer) - 1
        if count and run >= 0:
            start, stop = run_of(run * TILE_WIDTH, count)
            wanted[row.index] = (start, stop, run)
    read = _read_runs(conn, plant, rows, wanted)
    out: list[Placed | None] = []
    for row, leaf in zip(rows, leaves, strict=True):
        span = wanted.get(row.index)
        if span is None:
            out.append(None)
            continue
        start, _stop, _run = span
        got = read.get(row.index, [])
        backers, hashes = credit_leaf_hashes(dict(got))
        if backer not in backers:
            out.append(None)
            continue
        at = start + backers.index(backer)
        try:
            count = int(leaf["credits_count"])
            runs = runs_tree(row.credits_tiles, count)
            proof, root = grouped_inclusion(at, count, hashes, runs, TILE_HEIGHT), runs.root()
        except ValueError as e:
            raise LogCorrupt(f"{plant}: mint {row.index + 1}'s credits: {e}") from None
        if root.hex() != leaf["credits_root"]:
            raise LogCorrupt(f"{plant}: mint {row.index + 1}'s credits tiles differ from its leaf")
        units = dict(got)[backer]
        out.append(Placed(units, at, proof))
    return out


def _read_runs(
    conn: Connection,
    plant: str,
    rows: Sequence[log_repo.LeafRow],
    wanted: dict[int, tuple[int, int, int]],
) -> dict[int, list[tuple[str, int]]]:
    """(backer, units) of each wanted run: by id where the mint's credits have
    consecutive ids, else sorted by backer."""
    spans: list[tuple[int, int]] = []
    owner: list[tuple[int, int, int]] = []  # (first id, stop id, leaf index)
    out: dict[int, list[tuple[str, int]]] = {}
    for row in rows:
        span = wanted.get(row.index)
        if span is None:
            continue
        start, stop, _run = span
        if row.credits_first_id is None:
            out[row.index] = _run_by_order(conn, plant, row.index + 1, start, stop)
            continue
        a, b = row.credits_first_id + start, row.credits_first_id + stop
        spans.append((a, b))
        owner.append((a, b, row.index))
    owner.sort()
    firsts = [o[0] for o in owner]
    for row_id, who, units in log_repo.credit_runs(conn, spans):
        at = bisect_right(firsts, row_id) - 1
        out.setdefault(owner[at][2], []).append((who, units))
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
