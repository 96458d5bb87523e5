#!/usr/bin/env python3
"""heliod's offline verifier: checks a backer's proof bundle against the gateway's key.

    python3 verify.py BUNDLE --key VKEY [--previous CHECKPOINT_FILE] [--lang en|fr]

One file, Python 3.8 or newer and its standard library only, so that a backer can read it and run it anywhere
without trusting heliod or any package (docs/verification.md). It checks the signed
checkpoint, that the bundle's leaves are the plant's mints 1..N of that checkpoint's tree,
the backer's register leaves and credits in each mint's trees, and recomputes every
credit from the exact entitlement (docs/accounting.md); with --previous, that the log
the backer saw earlier is a prefix of this one. Prints the verified balance (exit 0), or
names the first failure (exit 1; 2 for a bad command line).

Formats (docs/verification.md): Merkle trees and proofs as RFC 9162 section 2.1; Ed25519
verification as RFC 8032 section 5.1.7; checkpoints and signatures as the C2SP
specifications tlog-checkpoint and signed-note.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Any

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
BUNDLE_VERSION = 1
LEAF_VERSION = 1
MAX_SIGNATURES = 100  # signed-note: verifiers accept at least 16


# --- canonical JSON (docs/verification.md, "Leaves") ---------------------------------


def canonical_decimal(value: Decimal) -> str:
    """A finite decimal in its shortest exact form: `100`, `0.5`, `0`; no exponent."""
    text = str(value)  # positional unless it needs an exponent: then as format "f"
    if "E" in text or not text[-1:].isdigit():
        if not value.is_finite():
            raise ValueError(f"not a finite decimal: {value}")
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _plain(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return canonical_decimal(obj)
    if isinstance(obj, float):
        raise TypeError("binary floats have no canonical form: use Decimal or int")
    if isinstance(obj, dict) or isinstance(obj, Mapping):  # noqa: SIM101 - dict first: fast
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"object key {key!r} is not a string")
            out[key] = _plain(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (str, int)):
        return obj
    raise TypeError(f"{type(obj).__name__} has no canonical JSON form")


def canonical_json(obj: Any) -> bytes:
    """The canonical bytes of a leaf: UTF-8, keys sorted, no whitespace, decimals as
    strings in their shortest exact form."""
    return _dumps(_plain(obj))


def _dumps(plain: Any) -> bytes:
    # For data already made of dicts, lists, strings and integers only.
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


# --- Merkle hashes and proofs (RFC 9162, section 2.1) --------------------------------


class ProofError(ValueError):
    """A Merkle proof, a hash or a signature that does not check out."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || leaf bytes)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_hashes(what: str, hashes: Iterable[bytes]) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"{what} {i} is not a {HASH_SIZE}-byte hash")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` leads to from the leaf hash at `index` of a tree of `size`
    leaves (RFC 9162, 2.1.3.2); ProofError when the proof cannot be that of such a leaf."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes("leaf hash", [leaf])
    _check_hashes("proof element", proof)
    return _chain(index, size, leaf, proof)


def _chain(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof has more elements than the tree has levels")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof has fewer elements than the tree has levels")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """ProofError unless `proof` shows the leaf hash at `index` in the tree `root`."""
    _check_hashes("root", [root])
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("the proof leads to another root")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """ProofError unless `proof` shows that the tree `root1` of `size1` leaves is the
    first `size1` leaves of the tree `root2` (RFC 9162, 2.1.4.2). A proof from the
    empty tree proves nothing and is refused, as is any unused element."""
    _check_hashes("root", [root1, root2])
    _check_hashes("proof element", proof)
    if size1 < 0 or size2 < 0:
        raise ProofError("a tree size is negative")
    if size1 > size2:
        raise ProofError(f"first size {size1} is larger than second size {size2}")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes take an empty proof")
        if root1 != root2:
            raise ProofError("equal sizes with different roots")
        return
    path = list(proof)
    if not path:
        raise ProofError("empty proof")
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof has more elements than it uses")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof has fewer elements than needed")
    if fr != root1:
        raise ProofError("the proof does not lead to the first root")
    if sr != root2:
        raise ProofError("the proof does not lead to the second root")


def tree_root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root of a tree of these leaf hashes (RFC 9162, 2.1.1), level by level."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


# --- Ed25519 verification (RFC 8032, section 5.1.7) ----------------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
if TYPE_CHECKING:  # a runtime alias would need Python 3.9; the verifier runs on 3.8
    _Point = tuple[int, int, int, int]  # extended homogeneous coordinates (X, Y, Z, T)
_IDENTITY: _Point = (0, 1, 1, 0)


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = 2 * t1 * t2 * _D % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(scalar: int, point: _Point) -> _Point:
    result = _IDENTITY
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _same(a: _Point, b: _Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    if x & 1 != sign:
        x = _P - x
    return x


def _decode_point(data: bytes) -> _Point | None:
    """RFC 8032 5.1.3; None for bytes that are not a point's canonical encoding."""
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def _base_point() -> _Point:
    y = 4 * pow(5, _P - 2, _P) % _P  # RFC 8032 5.1: B = (x, 4/5) with x even
    x = _recover_x(y, 0)
    assert x is not None
    return (x, y, 1, x * y % _P)


_BASE = _base_point()


def ed25519_public_key_ok(public_key: bytes) -> bool:
    """True when the 32 bytes decode to a point of the curve."""
    return _decode_point(public_key) is not None


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 5.1.7: True when `signature` is `public_key`'s over `message`.

    Refuses a public key or R that does not decode and an S not below L (no signature
    malleability); checks the cofactored equation [8][S]B = [8]R + [8][k]A."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public_key)
    r = _decode_point(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little")
    left = _mul(8 * s, _BASE)
    right = _mul(8, _add(r, _mul(k % _L, a)))
    return _same(left, right)


# --- signed notes and checkpoints (C2SP signed-note, tlog-checkpoint) -----------------

ED25519_TYPE = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # em dash, space


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def _strict_b64(text: str) -> bytes | None:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return data if base64.b64encode(data).decode("ascii") == text else None


def _name_ok(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def parse_vkey(vkey: str) -> tuple[str, bytes]:
    """`name+hhhhhhhh+base64(0x01 || public key)` as (name, public key); ValueError
    when any part is malformed, the key id does not match or the key is not a point."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key has three parts joined by '+'")
    name, hex_id, material = parts
    if not _name_ok(name):
        raise ValueError("the key name is empty or holds a space or '+'")
    if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
        raise ValueError("the key id is not 8 lowercase hex digits")
    raw = _strict_b64(material)
    if raw is None or len(raw) != 33 or raw[:1] != ED25519_TYPE:
        raise ValueError("the key material is not base64 of 0x01 and 32 bytes")
    public_key = raw[1:]
    if key_id(name, public_key).hex() != hex_id:
        raise ValueError("the key id does not match the name and public key")
    if not ed25519_public_key_ok(public_key):
        raise ValueError("the public key is not a point of Ed25519")
    return name, public_key


def split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """A signed note's text and its signatures (name, key id, signature); ValueError
    when the note is not of the signed-note form."""
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise ValueError("the note holds control characters")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise ValueError("no blank line between the text and the signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    if not block.endswith("\n"):
        raise ValueError("the last signature line does not end with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise ValueError("a signature line does not start with an em dash and a space")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = _strict_b64(encoded)
        if not _name_ok(name) or raw is None or len(raw) < 5:
            raise ValueError("a signature line is malformed")
        signatures.append((name, raw[:4], raw[4:]))
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise ValueError(f"a note has 1 to {MAX_SIGNATURES} signatures")
    return text, signatures


def open_note(note: str, name: str, public_key: bytes) -> str:
    """The text of `note` once signed by the key (name, public key). Signatures by other
    keys are ignored. ValueError for a malformed note, LookupError when no signature is
    by this key, ProofError when one by this key does not verify."""
    text, signatures = split_note(note)
    wanted = key_id(name, public_key)
    ours = [sig for n, kid, sig in signatures if n == name and kid == wanted]
    if not ours:
        raise LookupError(name)
    message = text.encode("utf-8")
    for sig in ours:
        if not ed25519_verify(public_key, message, sig):
            raise ProofError("a signature by the key does not verify")
    return text


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    """(origin, tree size, root) of a checkpoint's note text; ValueError if malformed."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise ValueError("a checkpoint is three or more non-empty lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if (
        not size_text.isascii()
        or not size_text.isdigit()
        or (size_text != "0" and size_text.startswith("0"))
    ):
        raise ValueError("the tree size is not a decimal number without leading zeros")
    root = _strict_b64(root_text)
    if root is None or len(root) != HASH_SIZE:
        raise ValueError("the root is not base64 of 32 bytes")
    return origin, int(size_text), root


# --- the proof bundle (docs/verification.md, "Proof bundle") --------------------------


class Failure(Exception):
    """The first check that failed: a code (the key of MESSAGES) and its parameters."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code, params)
        self.code = code
        self.params = params

    def message(self, lang: str = "en") -> str:
        """The failure in words, in English ("en") or French ("fr")."""
        template = MESSAGES[self.code][1 if lang == "fr" else 0]
        params = dict(self.params)
        if "note" in params:
            params["note"] = NOTES[params["note"]][1 if lang == "fr" else 0]
        return template.format(**params)


@dataclass(frozen=True)
class Result:
    """What a bundle proves: the backer's verified balance and what it rests on."""

    plant: str
    backer: str
    origin: str
    tree_size: int
    balance_units: int
    entitlement: Fraction
    credited_mints: int
    previous_size: int | None

    def message(self, lang: str = "en") -> str:
        """The verified balance in words."""
        text = OK_MESSAGE[1 if lang == "fr" else 0].format(**vars(self))
        if self.previous_size is not None:
            text += "\n" + PREVIOUS_OK[1 if lang == "fr" else 0].format(**vars(self))
        return text


def _field(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise Failure("bad_bundle", where=f"{where}.{key}" if where else key, expected="present")
    return obj[key]


def _int(value: Any, where: str, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise Failure("bad_bundle", where=where, expected=f"an integer >= {low}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise Failure("bad_bundle", where=where, expected="a non-empty string")
    return value


def _hash(value: Any, where: str) -> bytes:
    if isinstance(value, str) and len(value) == 2 * HASH_SIZE and value == value.lower():
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise Failure("bad_bundle", where=where, expected="64 lowercase hex digits")


def _hashes(value: Any, where: str) -> list[bytes]:
    if not isinstance(value, list):
        raise Failure("bad_bundle", where=where, expected="a list of hashes")
    # The whole list decoded at once (a bundle holds hundreds of thousands of hashes);
    # element by element only to name the one that is wrong.
    if all(isinstance(v, str) and len(v) == 2 * HASH_SIZE for v in value):
        joined = "".join(value)
        if joined == joined.lower():
            try:
                raw = bytes.fromhex(joined)
            except ValueError:
                raw = b""
            if len(raw) == HASH_SIZE * len(value):
                return [raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE)]
    return [_hash(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite() and canonical_decimal(number) == value:
            return number
    raise Failure("bad_bundle", where=where, expected="a decimal string in shortest form")


_LEAF_KEYS = {
    "v",
    "plant",
    "mwh_index",
    "completed_at_us",
    "units",
    "undistributed_units",
    "register_root",
    "register_count",
    "register_total",
    "credits_root",
    "credits_count",
}


def _check_leaf(leaf: Any, where: str, plant: str, mwh_index: int) -> None:
    if not isinstance(leaf, dict) or set(leaf) != _LEAF_KEYS:
        raise Failure("bad_bundle", where=where, expected="a mint leaf of the documented keys")
    if leaf["v"] != LEAF_VERSION or isinstance(leaf["v"], bool):
        raise Failure("bad_bundle", where=f"{where}.v", expected=str(LEAF_VERSION))
    if leaf["plant"] != plant:
        raise Failure("wrong_plant", mwh_index=mwh_index, found=leaf["plant"], plant=plant)
    if leaf["mwh_index"] != mwh_index or isinstance(leaf["mwh_index"], bool):
        raise Failure("mint_order", position=mwh_index, found=leaf["mwh_index"])
    _int(leaf["completed_at_us"], f"{where}.completed_at_us", low=-(2**63))
    _int(leaf["units"], f"{where}.units", low=1)
    _int(leaf["undistributed_units"], f"{where}.undistributed_units")
    _hash(leaf["register_root"], f"{where}.register_root")
    _int(leaf["register_count"], f"{where}.register_count")
    _decimal(leaf["register_total"], f"{where}.register_total")
    _hash(leaf["credits_root"], f"{where}.credits_root")
    _int(leaf["credits_count"], f"{where}.credits_count")


def _open_checkpoint(note: Any, which: str, name: str, public_key: bytes) -> tuple[int, bytes]:
    if not isinstance(note, str):
        raise Failure("bad_note", note=which, reason="not text")
    try:
        text = open_note(note, name, public_key)
        origin, size, root = parse_checkpoint(text)
    except LookupError:
        raise Failure("unsigned", note=which, key=name) from None
    except ProofError:
        raise Failure("bad_signature", note=which, key=name) from None
    except ValueError as exc:
        raise Failure("bad_note", note=which, reason=str(exc)) from None
    if origin != name:
        raise Failure("wrong_origin", note=which, origin=origin, key=name)
    return size, root


def check_bundle(bundle: Any, vkey: str, previous_note: str | None = None) -> Result:
    """Every check of docs/verification.md on a parsed bundle; the Result, or Failure
    naming the first check that failed."""
    try:
        name, public_key = parse_vkey(vkey)
    except ValueError as exc:
        raise Failure("bad_key", reason=str(exc)) from None
    if not isinstance(bundle, dict):
        raise Failure("bad_bundle", where="(bundle)", expected="a JSON object")
    version = _field(bundle, "version", "")
    if version != BUNDLE_VERSION or isinstance(version, bool):
        raise Failure("unsupported_version", version=version)
    plant = _str(_field(bundle, "plant", ""), "plant")
    backer = _str(_field(bundle, "backer", ""), "backer")
    origin = _str(_field(bundle, "origin", ""), "origin")
    size, root = _open_checkpoint(_field(bundle, "checkpoint", ""), "checkpoint", name, public_key)
    if origin != name or not origin.endswith("/" + plant):
        raise Failure("wrong_origin", note="checkpoint", origin=origin, key=name)
    tree_size = _int(_field(bundle, "tree_size", ""), "tree_size")
    if tree_size != size:
        raise Failure("size_mismatch", tree_size=tree_size, checkpoint_size=size)
    mints = _field(bundle, "mints", "")
    if not isinstance(mints, list):
        raise Failure("bad_bundle", where="mints", expected="a list")
    if len(mints) != size:
        raise Failure("mint_count", count=len(mints), size=size)

    leaf_hashes: list[bytes] = []
    fractions: dict[tuple[int, str, str], Fraction] = {}
    entitlement = Fraction(0)
    credited = 0
    credited_mints = 0
    for position, mint in enumerate(mints):
        n = position + 1
        where = f"mints[{position}]"
        leaf = _field(mint, "leaf", where)
        _check_leaf(leaf, f"{where}.leaf", plant, n)
        if _int(_field(mint, "leaf_index", where), f"{where}.leaf_index") != position:
            raise Failure("mint_order", position=n, found=mint["leaf_index"] + 1)
        lh = leaf_hash(_dumps(leaf))  # _check_leaf: strings and integers only
        leaf_hashes.append(lh)
        try:
            path = _hashes(_field(mint, "inclusion", where), f"{where}.inclusion")
            if _chain(position, size, lh, path) != root:
                raise ProofError("another root")
        except ProofError:
            raise Failure("leaf_not_included", mwh_index=n) from None

        register = _field(mint, "register", where)
        if register is not None:
            weight_text = _field(register, "weight", f"{where}.register")
            weight = _decimal(weight_text, f"{where}.register.weight")
            index = _int(_field(register, "index", f"{where}.register"), f"{where}.register.index")
            path = _hashes(
                _field(register, "inclusion", f"{where}.register"), f"{where}.register.inclusion"
            )
            reg_leaf = leaf_hash(_dumps({"backer": backer, "weight": weight_text}))
            try:
                if _chain(index, leaf["register_count"], reg_leaf, path) != _hash(
                    leaf["register_root"], ""
                ):
                    raise ProofError("another root")
            except ProofError:
                raise Failure("register_not_included", mwh_index=n) from None
            total = Decimal(leaf["register_total"])
            if not 0 < weight <= total:
                raise Failure(
                    "bad_weight", mwh_index=n, weight=weight_text, total=leaf["register_total"]
                )
            share = (leaf["units"], weight_text, leaf["register_total"])
            if share not in fractions:  # U × w / W, the same for every mint of a register
                fractions[share] = leaf["units"] * Fraction(weight) / Fraction(total)
            entitlement += fractions[share]
        due = entitlement.numerator // entitlement.denominator - credited

        credit = _field(mint, "credit", where)
        if credit is None:
            if due:
                raise Failure("credit_missing", mwh_index=n, expected=due)
            continue
        units = _int(_field(credit, "units", f"{where}.credit"), f"{where}.credit.units")
        index = _int(_field(credit, "index", f"{where}.credit"), f"{where}.credit.index")
        path = _hashes(_field(credit, "inclusion", f"{where}.credit"), f"{where}.credit.inclusion")
        credit_leaf = leaf_hash(_dumps({"backer": backer, "units": units}))
        try:
            if _chain(index, leaf["credits_count"], credit_leaf, path) != _hash(
                leaf["credits_root"], ""
            ):
                raise ProofError("another root")
        except ProofError:
            raise Failure("credit_not_included", mwh_index=n) from None
        if units != due:
            raise Failure("credit_wrong", mwh_index=n, units=units, expected=due)
        credited += units
        credited_mints += 1

    previous_size: int | None = None
    previous_root = EMPTY_ROOT
    if previous_note is not None:
        previous_size, previous_root = _open_checkpoint(previous_note, "previous", name, public_key)
        if previous_size > size:
            raise Failure("previous_newer", previous_size=previous_size, tree_size=size)
    consistency = bundle.get("consistency")
    if consistency is not None:
        start = _int(_field(consistency, "from", "consistency"), "consistency.from")
        proof = _hashes(_field(consistency, "proof", "consistency"), "consistency.proof")
        if start > size:
            raise Failure("bad_consistency", start=start, tree_size=size)
        against = previous_root if previous_size == start else tree_root_of(leaf_hashes[:start])
        try:
            if start == 0:
                if proof or against != EMPTY_ROOT:
                    raise ProofError("a proof from the empty tree is empty")
            else:
                verify_consistency(start, size, against, root, proof)
        except ProofError:
            if previous_size == start:
                raise Failure("inconsistent", previous_size=start, tree_size=size) from None
            raise Failure("bad_consistency", start=start, tree_size=size) from None
    if previous_size is not None and tree_root_of(leaf_hashes[:previous_size]) != previous_root:
        raise Failure("inconsistent", previous_size=previous_size, tree_size=size)
    return Result(plant, backer, origin, size, credited, entitlement, credited_mints, previous_size)


# --- messages, English and French -----------------------------------------------------

NOTES = {
    "checkpoint": ("the bundle's checkpoint", "le checkpoint du fichier de preuves"),
    "previous": ("the previous checkpoint", "le checkpoint précédent"),
}

MESSAGES = {
    "unreadable": (
        "cannot read {path}: {reason}",
        "impossible de lire {path} : {reason}",
    ),
    "bad_key": (
        "the verifier key is not valid: {reason}",
        "la clé de vérification n'est pas valide : {reason}",
    ),
    "bad_bundle": (
        "the bundle is malformed at {where}: expected {expected}",
        "le fichier de preuves est mal formé à {where} : attendu {expected}",
    ),
    "unsupported_version": (
        "bundle version {version} is not supported (this verifier reads version 1)",
        "la version {version} du fichier de preuves n'est pas prise en charge (ce vérificateur lit la version 1)",
    ),
    "bad_note": (
        "{note} is not a valid signed checkpoint: {reason}",
        "{note} n'est pas un checkpoint signé valide : {reason}",
    ),
    "unsigned": (
        "{note} carries no signature by the key {key}",
        "{note} ne porte aucune signature de la clé {key}",
    ),
    "bad_signature": (
        "{note} has a signature by the key {key} that does not verify: it was altered or forged",
        "{note} porte une signature de la clé {key} qui n'est pas valide : il a été modifié ou contrefait",
    ),
    "wrong_origin": (
        "{note} is for the log {origin}, not for the key {key}",
        "{note} concerne le journal {origin}, pas la clé {key}",
    ),
    "size_mismatch": (
        "the bundle says the log has {tree_size} mints, its signed checkpoint says {checkpoint_size}",
        "le fichier de preuves annonce {tree_size} MWh frappés, son checkpoint signé en annonce {checkpoint_size}",
    ),
    "mint_count": (
        "the bundle holds {count} mints, the signed checkpoint has {size}: a mint is missing or added",
        "le fichier de preuves contient {count} MWh frappés, le checkpoint signé en a {size} : il en manque ou il y en a en trop",
    ),
    "mint_order": (
        "mint number {position} of the bundle is not MWh {position} (found {found})",
        "la frappe numéro {position} du fichier de preuves n'est pas le MWh {position} ({found} trouvé)",
    ),
    "wrong_plant": (
        "MWh {mwh_index} belongs to plant {found}, not {plant}",
        "le MWh {mwh_index} appartient à la centrale {found}, pas à {plant}",
    ),
    "leaf_not_included": (
        "MWh {mwh_index} is not in the signed log: its leaf or its proof was altered",
        "le MWh {mwh_index} n'est pas dans le journal signé : sa feuille ou sa preuve a été modifiée",
    ),
    "register_not_included": (
        "the backer's weight for MWh {mwh_index} is not in that mint's signed register",
        "le poids du contributeur pour le MWh {mwh_index} n'est pas dans le registre signé de cette frappe",
    ),
    "bad_weight": (
        "the backer's weight {weight} for MWh {mwh_index} is not between 0 and the total {total}",
        "le poids {weight} du contributeur pour le MWh {mwh_index} n'est pas entre 0 et le total {total}",
    ),
    "credit_not_included": (
        "the backer's credit for MWh {mwh_index} is not in that mint's signed credits",
        "le crédit du contributeur pour le MWh {mwh_index} n'est pas dans les crédits signés de cette frappe",
    ),
    "credit_missing": (
        "MWh {mwh_index} should credit the backer {expected} units and credits nothing",
        "le MWh {mwh_index} devrait créditer {expected} unités au contributeur et ne crédite rien",
    ),
    "credit_wrong": (
        "MWh {mwh_index} credits the backer {units} units where the shares give {expected}",
        "le MWh {mwh_index} crédite {units} unités au contributeur alors que les parts en donnent {expected}",
    ),
    "previous_newer": (
        "the previous checkpoint (size {previous_size}) is newer than the bundle's (size {tree_size})",
        "le checkpoint précédent (taille {previous_size}) est plus récent que celui du fichier de preuves (taille {tree_size})",
    ),
    "inconsistent": (
        "the log was rewritten: the previous checkpoint of size {previous_size} is not a prefix of the log of size {tree_size}",
        "le journal a été réécrit : le checkpoint précédent de taille {previous_size} n'est pas un début du journal de taille {tree_size}",
    ),
    "bad_consistency": (
        "the bundle's consistency proof from size {start} to {tree_size} does not verify",
        "la preuve de cohérence du fichier de preuves, de la taille {start} à {tree_size}, n'est pas valide",
    ),
}

OK_MESSAGE = (
    "OK: backer {backer} of plant {plant}: {tree_size} mints verified against the signed "
    "checkpoint of {origin}; balance {balance_units} units, credited by {credited_mints} mints "
    "(exact entitlement {entitlement} units)",
    "OK : contributeur {backer} de la centrale {plant} : {tree_size} frappes vérifiées avec le "
    "checkpoint signé de {origin} ; solde {balance_units} unités, créditées par {credited_mints} "
    "frappes (droit exact {entitlement} unités)",
)
PREVIOUS_OK = (
    "the previous checkpoint of size {previous_size} is a prefix of this log: nothing was rewritten",
    "le checkpoint précédent de taille {previous_size} est un début de ce journal : rien n'a été réécrit",
)
FAILED = ("FAILED: ", "ÉCHEC : ")


def pick_language(option: str | None, environ: Mapping[str, str]) -> str:
    """ "fr" or "en": the option, else the first of LC_ALL, LC_MESSAGES, LANG that is set."""
    if option:
        return option
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable, "")
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


def _reject_float(text: str) -> Any:
    raise ValueError(f"binary number {text} (amounts are integers or decimal strings)")


def read_bundle(path: str) -> Any:
    """A bundle file parsed as JSON; Failure("unreadable") when it cannot be."""
    try:
        with open(path, "rb") as f:
            return json.loads(
                f.read().decode("utf-8"), parse_float=_reject_float, parse_constant=_reject_float
            )
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise Failure("unreadable", path=path, reason=str(exc)) from None


def read_note(path: str) -> str:
    """A checkpoint file's text; Failure("unreadable") when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure("unreadable", path=path, reason=str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: prints the verified balance (0) or the first failure (1)."""
    parser = argparse.ArgumentParser(
        prog="verify.py",
        description="Check a heliod proof bundle / vérifier un fichier de preuves heliod",
    )
    parser.add_argument("bundle", help="the proof bundle (JSON)")
    parser.add_argument("--key", required=True, help="the gateway's verifier key (name+id+key)")
    parser.add_argument(
        "--previous", help="a checkpoint saved earlier, to check the log was not rewritten"
    )
    parser.add_argument("--lang", choices=("en", "fr"), help="language of the messages")
    args = parser.parse_args(argv)
    lang = pick_language(args.lang, os.environ)
    try:
        previous = read_note(args.previous) if args.previous else None
        result = check_bundle(read_bundle(args.bundle), args.key, previous)
    except Failure as failure:
        print(FAILED[1 if lang == "fr" else 0] + failure.message(lang), file=sys.stderr)
        return 1
    print(result.message(lang))
    return 0


if __name__ == "__main__":
    sys.exit(main())
