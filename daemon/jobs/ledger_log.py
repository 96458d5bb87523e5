"""Each mint appended to its plant's verifiable log, in the mint's transaction.

docs/verification.md: a mint's leaf (with the roots of its register and credits trees)
is appended and the checkpoint of the new size signed and stored in the transaction
that commits the mint, its credits and its push body, which carries the checkpoint. A
ledger from before the log gets its log built from its stored mints at the first batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from heliod.adapters.store import Connection, log_repo
from heliod.rewards.allocation import Credits
from heliod.rewards.register import InForce, Register, RegisterKey
from heliod.rewards.tlog.leaves import (
    GROUP_HEIGHT,
    credit_leaf_hashes,
    mint_leaf,
    register_root,
    sorted_credits_tree,
    sorted_register_root,
    stored_tree,
)
from heliod.rewards.tlog.note import checkpoint_text, signed_note, vkey
from heliod.rewards.tlog.tree import CompactRange
from heliod.rewards.tlog.verify import canonical_json, leaf_hash
from heliod.rewards.verify import MintRecord

log = logging.getLogger("heliod.log")


class Signer(Protocol):
    """An Ed25519 key (adapters/signing.py SigningKey fits)."""

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The 64-byte signature of `message`."""
        ...


@dataclass(frozen=True)
class LogSigner:
    """The gateway's key and the prefix of each plant's origin (`[log]`)."""

    origin_prefix: str
    key: Signer

    def origin(self, plant: str) -> str:
        """The plant's checkpoint origin, also the key's name in signed notes."""
        return f"{self.origin_prefix}/{plant}"

    def vkey(self, plant: str) -> str:
        """The plant's verifier key."""
        return vkey(self.origin(plant), self.key.public_key)


class LogMismatch(Exception):
    """The plant's stored log and its stored mints disagree: a leaf is never rewritten,
    so the accountant stops until a person looks (`heliod ledger verify` names it)."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A mint's leaf and the signed checkpoint of the log's new size, not yet stored."""

    plant: str
    leaf_index: int
    leaf: str  # canonical JSON
    leaf_hash: bytes
    credits_tiles: bytes
    credits_runs: list[str]
    credits_count: int
    root: bytes  # of the log of size leaf_index + 1
    checkpoint: str  # the signed note

    def push_field(self) -> dict[str, Any]:
        """The push body's `log` (docs/platform.md, "The push")."""
        return {"leaf_index": self.leaf_index, "checkpoint": self.checkpoint}


_RegisterTree = tuple[bytes, int, str]  # root, count, W


class MintLog:
    """Keeps each plant's log as a compact range between mints; builds, signs and
    stores leaves and checkpoints in the caller's transaction."""

    def __init__(self, signer: LogSigner) -> None:
        self.signer = signer
        self._ranges: dict[str, CompactRange] = {}
        # The register tree is the same for every mint under the same weights in force.
        self._register_trees: dict[str, tuple[RegisterKey, _RegisterTree]] = {}

    def forget(self) -> None:
        """Drop what memory holds of the logs (after a rolled-back transaction)."""
        self._ranges.clear()

    def vkey(self, plant: str) -> str:
        """The plant's verifier key."""
        return self.signer.vkey(plant)

    def sync(self, conn: Connection, plant: str, register: Register, now_us: int) -> None:
        """Load the plant's log (again when another process grew it); for a ledger from
        before the log (no leaf, no checkpoint, no key yet), first build the leaves of its
        stored mints, from the mints, their credits and the register rows each mint saw,
        and sign the checkpoint of the size reached. Raises LogMismatch when a stored mint
        has no leaf in a log that was already signed."""
        cached = self._ranges.get(plant)
        if cached is not None:
            newest = log_repo.newest_checkpoint(conn, plant)
            if (0 if newest is None else newest.size) == cached.size:
                return
            # Another accountant (`heliod account` while the daemon runs) grew the log
            # since: read it again from the store rather than refuse the next mint.
            del self._ranges[plant]
        tree = CompactRange(log_repo.leaf_hashes(conn, plant))
        missing = log_repo.mints_after(conn, plant, tree.size)
        if missing and (
            tree.size
            or log_repo.newest_checkpoint(conn, plant) is not None
            or log_repo.keys(conn, plant)
        ):
            # Built from stored mints only for a ledger from before the log: a leaf missing
            # once the log was signed is never made again (a second history of that size).
            raise LogMismatch(
                f"{plant}: stored mint {missing[0].mwh_index} has no leaf in a log that was "
                f"already signed (it holds {tree.size} leaves); a leaf is never rewritten: "
                "run `heliod ledger verify`"
            )
        for m in missing:
            if m.mwh_index != tree.size + 1:
                raise LogMismatch(
                    f"{plant}: the log holds {tree.size} leaves but the next stored mint is "
                    f"{m.mwh_index}; run `heliod ledger verify`"
                )
            weights = register.weights_at(m.completed_at_us, m.register_pos)
            credits = log_repo.credits_of(conn, plant, m.mwh_index)
            facts = (m.mwh_index, m.completed_at_us, m.units, m.undistributed_after)
            register_tree = self._register_tree(plant, None, weights)
            entry = self._leaf(plant, tree.size, facts, register_tree, credits)
            self._store_leaf(conn, entry)
            tree.append(entry.leaf_hash)
        if missing:
            root = tree.root()
            note = self._sign(plant, tree.size, root)
            row = log_repo.CheckpointRow(tree.size, root, note)
            self._store_checkpoint(conn, plant, row, now_us)
            log.info(
                "%s: built the verifiable log of %d mints committed before it (size %d)",
                plant, len(missing), tree.size,
            )  # fmt: skip
        self._ranges[plant] = tree

    def entry(
        self,
        mint: MintRecord,
        register_key: RegisterKey,
        weights: Mapping[str, Decimal],
        credits: Mapping[str, int],
    ) -> LogEntry:
        """The mint's leaf (with the weights in force it was credited by), and the
        checkpoint of the log with it, signed."""
        plant, mwh_index = mint.plant, mint.mwh_index
        tree = self._ranges[plant]
        if mwh_index != tree.size + 1:
            raise LogMismatch(
                f"{plant}: mint {mwh_index} cannot be leaf {mwh_index - 1} of a log of "
                f"{tree.size} leaves; run `heliod ledger verify`"
            )
        register = self._register_tree(plant, register_key, weights)
        facts = (mwh_index, mint.completed_at_us, mint.units, mint.undistributed_after)
        entry = self._leaf(plant, tree.size, facts, register, credits)
        grown = tree.copy()
        grown.append(entry.leaf_hash)
        root = grown.root()
        return replace(entry, root=root, checkpoint=self._sign(plant, grown.size, root))

    def append(self, conn: Connection, entry: LogEntry, now_us: int) -> None:
        """Store the entry's leaf and checkpoint (after its mint and credits)."""
        self._store_leaf(conn, entry)
        row = log_repo.CheckpointRow(entry.leaf_index + 1, entry.root, entry.checkpoint)
        self._store_checkpoint(conn, entry.plant, row, now_us)
        self._ranges[entry.plant].append(entry.leaf_hash)

    def _register_tree(
        self, plant: str, key: RegisterKey | None, weights: Mapping[str, Decimal]
    ) -> _RegisterTree:
        cached = self._register_trees.get(plant)
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        if isinstance(weights, InForce):  # sorted and positive: no lookup per backer
            found, total = sorted_register_root(
                weights.backers, weights.weights, weights.common, weights.places
            )
        else:
            found, total = register_root(weights)
        tree = (found.root, found.count, total)
        if key is not None:
            self._register_trees[plant] = (key, tree)
        return tree

    @staticmethod
    def _leaf(
        plant: str,
        index: int,
        facts: tuple[int, int, int, int],  # mwh_index, completed_at_us, units, undistributed
        register: _RegisterTree,
        credits: Mapping[str, int],
    ) -> LogEntry:
        """The leaf at `index` (not signed: root and checkpoint empty)."""
        if isinstance(credits, Credits):  # a mint's own: sorted, no lookup per backer
            backers = list(credits.names())
            stored = sorted_credits_tree(backers, credits.units)
        else:
            backers, hashes = credit_leaf_hashes(credits)
            stored = stored_tree(hashes)
        credits_root, blob, count = stored.root, stored.blob(), stored.count
        leaf = mint_leaf(plant, *facts, *register, credits_root, count)
        data = canonical_json(leaf)
        starts = backers[:: 1 << GROUP_HEIGHT]
        return LogEntry(plant, index, data.decode(), leaf_hash(data), blob, starts, count, b"", "")

    def _sign(self, plant: str, size: int, root: bytes) -> str:
        origin = self.signer.origin(plant)
        key = self.signer.key
        return signed_note(checkpoint_text(origin, size, root), origin, key.public_key, key.sign)

    def _store_leaf(self, conn: Connection, entry: LogEntry) -> None:
        first = None
        if entry.credits_count:
            first = log_repo.credit_span(
                conn, entry.plant, entry.leaf_index + 1, entry.credits_count
            )
        row = log_repo.LeafRow(
            entry.leaf_index,
            entry.leaf,
            entry.leaf_hash,
            entry.credits_tiles,
            entry.credits_runs,
            first,
        )
        log_repo.insert_leaf(conn, entry.plant, row)

    def _store_checkpoint(
        self, conn: Connection, plant: str, row: log_repo.CheckpointRow, now_us: int
    ) -> None:
        log_repo.insert_checkpoint(conn, plant, row, now_us=now_us)
        vkey = self.vkey(plant)
        if log_repo.record_key(conn, plant, vkey, row.size):
            others = [v for v, _size in log_repo.keys(conn, plant) if v != vkey]
            if others:
                # docs/verification.md, "The key": a new key is an incident to announce.
                log.warning(
                    "%s: the log is now signed by a new key, from size %d: %s (before: %s). "
                    "Give the platform and the backers the new verifier key; if nobody "
                    "replaced the key on purpose, find out why (a command run without the "
                    "daemon's credential makes a key of its own)",
                    plant, row.size, vkey, ", ".join(others),
                )  # fmt: skip
