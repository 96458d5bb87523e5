"""A plant's log built in memory for the tests and the bench: mints under a sequence of
registers, credits as the floors of exact entitlements (docs/accounting.md, written here
with Fractions and no code of heliod's allocation), leaves, trees and a checkpoint signed
with `cryptography`'s Ed25519."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from heliod.rewards.tlog.leaves import BackerTree, mint_leaf, mint_leaf_hashes, register_total
from heliod.rewards.tlog.note import checkpoint_text, make_bundle, signed_note, vkey
from heliod.rewards.tlog.tree import MerkleTree

SEED = bytes(range(32))  # a fixed key, so that failures reproduce


@dataclass
class Key:
    """An Ed25519 key under a name, signing with `cryptography`."""

    name: str
    private: Ed25519PrivateKey = field(
        default_factory=lambda: Ed25519PrivateKey.from_private_bytes(SEED)
    )

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def vkey(self) -> str:
        return vkey(self.name, self.public)

    def sign_note(self, text: str) -> str:
        return signed_note(text, self.name, self.public, self.private.sign)


@dataclass
class Log:
    """Mints 1..N of one plant with their trees; `bundle()` gives a backer's proofs."""

    plant: str
    units: int
    key: Key
    leaves: list[dict[str, Any]] = field(default_factory=list)
    registers: list[BackerTree] = field(default_factory=list)
    credits: list[BackerTree] = field(default_factory=list)
    entitled: dict[str, Fraction] = field(default_factory=dict)
    credited: dict[str, int] = field(default_factory=dict)
    undistributed: int = 0

    @property
    def origin(self) -> str:
        return self.key.name

    def mint(
        self,
        weights: Mapping[str, Decimal | int],
        register: BackerTree | None = None,
        credits: Mapping[str, int] | None = None,
    ) -> None:
        """One more MWh split by `weights` (pass `register` to reuse a built tree, and
        `credits` to log credits computed elsewhere instead of this module's own)."""
        positive = {b: Fraction(w) for b, w in weights.items() if w > 0}
        total = sum(positive.values(), Fraction(0))
        own: dict[str, int] = {}
        for b, w in positive.items():
            self.entitled[b] = self.entitled.get(b, Fraction(0)) + self.units * w / total
            due = int(self.entitled[b]) - self.credited.get(b, 0)
            if due:
                own[b] = due
        if credits is None:
            credits = own
        for b, c in credits.items():
            self.credited[b] = self.credited.get(b, 0) + c
        self.undistributed += self.units - sum(credits.values())
        reg = register if register is not None else BackerTree.register(weights)
        cre = BackerTree.credits(credits)
        self.registers.append(reg)
        self.credits.append(cre)
        self.leaves.append(
            mint_leaf(
                self.plant,
                len(self.leaves) + 1,
                1_700_000_000_000_000 + len(self.leaves) * 3_600_000_000,
                self.units,
                self.undistributed,
                reg.root,
                reg.count,
                register_total(weights),
                cre.root,
                cre.count,
            )
        )

    def checkpoint(self, size: int | None = None) -> str:
        """The signed checkpoint of the first `size` mints (all by default)."""
        n = len(self.leaves) if size is None else size
        root = MerkleTree(mint_leaf_hashes(self.leaves[:n])).root()
        return self.key.sign_note(checkpoint_text(self.origin, n, root))

    def bundle(self, backer: str, since: int | None = None) -> dict[str, Any]:
        """The backer's proof bundle over every mint, as JSON-ready data."""
        tree = MerkleTree(mint_leaf_hashes(self.leaves))
        return make_bundle(
            plant=self.plant,
            backer=backer,
            origin=self.origin,
            checkpoint=self.key.sign_note(checkpoint_text(self.origin, tree.size, tree.root())),
            leaves=self.leaves,
            registers=[r.place(backer) for r in self.registers],
            credits=[c.place(backer) for c in self.credits],
            since=since,
            log=tree,
        )


def build_log(
    registers: Sequence[Mapping[str, Decimal | int]], units: int = 1, plant: str = "p1"
) -> Log:
    """A log of one mint per entry of `registers`, each split by that entry's weights."""
    log = Log(plant, units, Key(f"heliod/{plant}"))
    for weights in registers:
        log.mint(weights)
    return log
