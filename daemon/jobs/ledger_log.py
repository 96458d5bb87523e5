"""Each mint appended to its plant's verifiable log, in the mint's transaction.

docs/verification.md: a mint's leaf (with the roots of its register and credits trees)
is appended and the checkpoint of the new size signed and stored in the transaction
that commits the mint, its credits and its push body, which carries the checkpoint. A
ledger from before the log gets its log built from its stored mints at the first batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
