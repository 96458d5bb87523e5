"""Checkpoints, signed notes, verifier keys and proof bundles (docs/verification.md).

Signing is injected (`sign`: note text bytes -> 64-byte Ed25519 signature), so that the
key stays in its adapter and this module stays pure.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from heliod.rewards.tlog.leaves import Placed
from heliod.rewards.tlog.tree import MerkleTree
from heliod.rewards.tlog.verify import (
    BUNDLE_VERSION,
    ED25519_TYPE,
    SIGNATURE_PREFIX,
    ProofError,
    canonical_json,
    leaf_hash,
    open_note,
    parse_checkpoint,
    parse_vkey,
)
from heliod.rewards.tlog.verify import key_id as _key_id

Signer = Callable[[bytes], bytes]


def origin_of(prefix: str, plant: str) -> str:
    """A plant's log origin and key name: `<origin_prefix>/<plant id>`."""
    return f"{prefix}/{plant}"


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The checkpoint's note text: origin, tree size, base64 root, each on its line."""
    if not origin or "\n" in origin or size < 0 or len(root) != 32:
        raise ValueError("a checkpoint has a one-line origin, a size ≥ 0 and a 32-byte root")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 key under `name`."""
    return _key_id(name, public_key)


def vkey(name: str, public_key: bytes) -> str:
    """The verifier key: `<name>+<8 hex digits of key id>+<base64(0x01 || key)>`."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    material = base64.b64encode(ED25519_TYPE + public_key).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{material}"


def signed_note(text: str, name: str, public_key: bytes, sign: Signer) -> str:
    """`text` signed as a C2SP signed note by the key (name, public key)."""
    if not text.endswith("\n"):
        raise ValueError("a note's text ends with a newline")
    signature = sign(text.encode("utf-8"))
    if len(signature) != 64:
        raise ValueError("an Ed25519 signature is 64 bytes")
    encoded = base64.b64encode(key_id(name, public_key) + signature).decode("ascii")
    return f"{text}\n{SIGNATURE_PREFIX}{name} {encoded}\n"


def _placed(placed: Placed | None, value_key: str) -> dict[str, Any] | None:
    if placed is None:
        return None
    return {
        value_key: placed.value,
        "index": placed.index,
        "inclusion": [h.hex() for h in placed.inclusion],
    }


def make_bundle(
    *,
    plant: str,
    backer: str,
    origin: str,
    checkpoint: str,
    leaves: Sequence[Mapping[str, Any]],
    registers: Sequence[Placed | None],
    credits: Sequence[Placed | None],
    since: int | None = None,
    log: MerkleTree | None = None,
) -> dict[str, Any]:
    """The backer's proof bundle over every mint 1..N of the plant.

    `leaves[i]` is mint i+1's leaf, `registers[i]` and `credits[i]` the backer's weight
    and credit in its trees (None when it has none); `checkpoint` is the signed note of
    size N = len(leaves). `log`, the plant's tree when the caller holds it, saves
    rebuilding it from the leaves; `since` = M adds the consistency proof from size M.
    """
    size = len(leaves)
    if len(registers) != size or len(credits) != size:
        raise ValueError("one register and one credit entry (or None) per mint")
    tree = log if log is not None else MerkleTree([leaf_hash(canonical_json(x)) for x in leaves])
    if tree.size < size:
        raise ValueError(f"the log holds {tree.size} leaves, fewer than the {size} mints")
    bundle: dict[str, Any] = {
        "version": BUNDLE_VERSION,
        "plant": plant,
        "backer": backer,
        "origin": origin,
        "checkpoint": checkpoint,
        "tree_size": size,
        "mints": [
            {
                "leaf": dict(leaf),
                "leaf_index": i,
                "inclusion": [h.hex() for h in tree.inclusion(i, size)],
                "register": _placed(registers[i], "weight"),
                "credit": _placed(credits[i], "units"),
            }
            for i, leaf in enumerate(leaves)
        ],
    }
    if since is not None:
        if not 0 <= since <= size:
            raise ValueError(f"since {since} is outside 0..{size}")
        proof = tree.consistency(since, size) if since else []
        bundle["consistency"] = {"from": since, "proof": [h.hex() for h in proof]}
    return bundle


def check_checkpoint(note: str, verifier_key: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint signed by `verifier_key` whose origin is the
    key's name; ValueError saying what is wrong otherwise."""
    name, public_key = parse_vkey(verifier_key)
    try:
        text = open_note(note, name, public_key)
    except LookupError:
        raise ValueError(f"no signature by the key {name}") from None
    except ProofError:
        raise ValueError(f"a signature by the key {name} does not verify") from None
    origin, size, root = parse_checkpoint(text)
    if origin != name:
        raise ValueError(f"the checkpoint is for {origin}, not {name}")
    return origin, size, root
