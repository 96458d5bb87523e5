"""Benchmarks of the verifiable ledger's pure code (issue: verifiable ledger).

  python bench/tlog_bundle.py bundle [--mints 10000] [--backers 1000] [--height 4]
  python bench/tlog_bundle.py trees  [--backers 10000 100000]

`bundle` builds in memory a plant's log of M mints credited to B backers (the register
changing every 1,000 mints), keeping per mint what a store would keep: the credits (one
array of units per mint) and the roots of the credits tree's groups of 2^height leaves.
It then times building one backer's proof bundle from that (leaf proofs from the log's
tree, register proofs from one tree per distinct register, credit proofs from the
backer's group and the stored group roots), verifying it in process with
`check_bundle`, and running `python3 -I verify.py` on it in a subprocess.

`trees` times, for one MWh and B backers, today's allocation (`Allocator.mint`) against
the work the log adds to it: the credits tree's root, the register tree's root (once per
register, cached by the store), the mint leaf and one Ed25519 signature of the checkpoint.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from array import array
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import heliod.rewards.tlog.verify as verify_module
from heliod.rewards.allocation import Allocator
from heliod.rewards.register import InForce
from heliod.rewards.tlog.leaves import (
    BackerTree,
    Placed,
    StoredTree,
    credits_root,
    mint_leaf,
    mint_leaf_hashes,
    prove_credit,
    register_root,
    register_total,
    stored_credits_tree,
)
from heliod.rewards.tlog.note import checkpoint_text, make_bundle, signed_note, vkey
from heliod.rewards.tlog.tree import MerkleTree
from heliod.rewards.tlog.verify import check_bundle

UNITS = 10**8  # 1 token per MWh, 8 decimals
ORIGIN = "heliod/p"


def _weights(backers: int, era: int) -> dict[str, Decimal]:
    return {f"b{i:06d}": Decimal(f"{100 + (i + era) % 900}.{i % 100:02d}") for i in range(backers)}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _key() -> tuple[Ed25519PrivateKey, bytes]:
    private = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def case_bundle(mints: int, backers: int, height: int, backer: str, save: str | None) -> None:
    private, public = _key()
    allocator = Allocator(UNITS)
    names = sorted(_weights(backers, 0))
    leaves = []
    credit_arrays: list[array[int]] = []  # units per backer of `names`, 0 for no credit
    orders: list[array[int]] = []  # the credits tree's leaves (as columns of `names`)
    eras: dict[int, tuple[dict[str, Decimal], str]] = {}
    stored: list[StoredTree] = []  # what the store keeps of each credits tree
    registers: dict[int, BackerTree] = {}
    start = time.perf_counter()
    for k in range(1, mints + 1):
        era = (k - 1) // 1000
        if era not in eras:
            weights = _weights(backers, era)
            eras[era] = (weights, register_total(weights))
            registers[era] = BackerTree.register(weights)
        weights, total = eras[era]
        allocator.use(InForce.of((era, 0), weights))
        credits = allocator.mint()
        tree = stored_credits_tree(credits, height)
        reg = registers[era]
        leaves.append(
            mint_leaf(
                "p",
                k,
                1_700_000_000_000_000 + k * 3_600_000_000,
                UNITS,
                allocator.undistributed,
                reg.root,
                reg.count,
                total,
                tree.root,
                tree.count,
            )
        )
        units = array("q", (credits.get(b, 0) for b in names))
        credit_arrays.append(units)
        orders.append(array("i", (i for i, u in enumerate(units) if u)))
        stored.append(tree)
    built = time.perf_counter() - start
    log = MerkleTree(mint_leaf_hashes(leaves))
    note = signed_note(checkpoint_text(ORIGIN, log.size, log.root()), ORIGIN, public, private.sign)
    stored_bytes = sum(len(level) for tree in stored for level in tree.upper) * 32

    # The bundle, from what is stored.
    start, cpu = time.perf_counter(), time.process_time()
    column = bisect.bisect_left(names, backer)
    width = 1 << height
    reg_places = {era: tree.place(backer) for era, tree in registers.items()}
    reg_proofs: list[Placed | None] = []
    credit_proofs: list[Placed | None] = []
    for k, units in enumerate(credit_arrays, start=1):
        reg_proofs.append(reg_places[(k - 1) // 1000])
        mine = units[column]
        if not mine:
            credit_proofs.append(None)
            continue
        # A store keeps each credit row's leaf index and reads the rows of its group.
        order = orders[k - 1]
        index = bisect.bisect_left(order, column)
        g = index // width
        rows = {names[c]: units[c] for c in order[g * width : (g + 1) * width]}
        credit_proofs.append(Placed(mine, index, prove_credit(index, rows, stored[k - 1])))
    bundle = make_bundle(
        plant="p",
        backer=backer,
        origin=ORIGIN,
        checkpoint=note,
        leaves=leaves,
        registers=reg_proofs,
        credits=credit_proofs,
        log=log,
    )
    text = json.dumps(bundle)
    bundle_s, bundle_cpu = time.perf_counter() - start, time.process_time() - cpu

    start, cpu = time.perf_counter(), time.process_time()
    result = check_bundle(json.loads(text), vkey(ORIGIN, public))
    check_s, check_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert result.balance_units == allocator.credited.get(backer, 0)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bundle.json").write_text(text)
        Path(tmp, "verify.py").write_bytes(Path(verify_module.__file__).read_bytes())
        start, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(
            [sys.executable, "-I", "verify.py", "bundle.json", "--key", vkey(ORIGIN, public)],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
            env={"LANG": "C.UTF-8", "PATH": os.environ.get("PATH", "")},
        )
        run_s, run_cpu = time.perf_counter() - start, _children_cpu() - cpu
    assert done.returncode == 0, done.stderr
    if save:
        Path(save).write_text(text)
        Path(save + ".vkey").write_text(vkey(ORIGIN, public))
    print(
        f"| {mints:,} | {backers:,} | 2^{height} | {built:.1f} s ({built / mints * 1000:.2f} ms/mint) "
        f"| {stored_bytes / mints:,.0f} B/mint | {bundle_s:.2f} s ({bundle_cpu:.2f} s) "
        f"| {len(text) / 1e6:.1f} MB | {check_s:.2f} s ({check_cpu:.2f} s) "
        f"| {run_s:.2f} s ({run_cpu:.2f} s) |"
    )


def case_trees(backers: int) -> None:
    private, public = _key()
    weights = _weights(backers, 0)
    allocator = Allocator(UNITS)
    allocator.use(InForce.of((0, 0), weights))
    allocator.mint()  # the first mint sets the remainders up
    start = time.perf_counter()
    credits = allocator.mint()
    allocation = time.perf_counter() - start
    start = time.perf_counter()
    cre = credits_root(credits)
    credits_s = time.perf_counter() - start
    start = time.perf_counter()
    reg, total = register_root(weights)
    register_s = time.perf_counter() - start
    start = time.perf_counter()
    leaf = mint_leaf(
        "p", 2, 0, UNITS, allocator.undistributed, reg.root, reg.count, total, cre.root, cre.count
    )
    log = MerkleTree(mint_leaf_hashes([leaf, leaf]))
    signed_note(checkpoint_text(ORIGIN, 2, log.root()), ORIGIN, public, private.sign)
    sign_s = time.perf_counter() - start
    print(
        f"| {backers:,} | {allocation:.3f} s | {credits_s:.3f} s | {register_s:.3f} s "
        f"| {sign_s * 1000:.1f} ms | {credits_s + sign_s:.3f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("bundle")
    b.add_argument("--mints", type=int, default=10_000)
    b.add_argument("--backers", type=int, default=1000)
    b.add_argument("--height", type=int, default=4)
    b.add_argument("--backer", default="b000500")
    b.add_argument("--save", help="write the bundle there (and its vkey to SAVE.vkey)")
    t = sub.add_parser("trees")
    t.add_argument("--backers", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    if args.what == "bundle":
        print(
            "| mints | backers | group | log built | hashes stored | bundle built | bundle size | check_bundle | python3 verify.py |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        case_bundle(args.mints, args.backers, args.height, args.backer, args.save)
    else:
        print(
            "| backers | allocation (today) | credits root | register root (once per register) | leaf + log + signature | added per mint |"
        )
        print("|---:|---:|---:|---:|---:|---:|")
        for n in args.backers:
            case_trees(n)


if __name__ == "__main__":
    main()
