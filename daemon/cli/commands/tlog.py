"""`ledger prove`, `ledger check-proof`, `log key`, `log checkpoint` (docs/verification.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from heliod.daemon.boot.settings import log_signer
from heliod.daemon.cli.commands.context import Context, Failure, UsageError
from heliod.daemon.cli.output import print_json
from heliod.daemon.read import tlog
from heliod.rewards.tlog import verify


def prove(ctx: Context, args: argparse.Namespace) -> int:
    """Write the backer's proof bundle (stdout, or -o FILE)."""
    plant = ctx.plant(args.plant)
    if args.since is not None and args.since < 0:
        raise UsageError("--since must be 0 or more")
    try:
        with ctx.store.read() as conn:
            body = tlog.bundle(
                conn, plant.id, args.backer, ctx.config.log.origin(plant.id), args.since
            )
    except tlog.LogUnavailable as e:
        raise Failure(str(e)) from None
    text = _one_mint_a_line(body)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        mints = len(body["mints"])
        print(f"wrote {args.output}: {args.backer}'s proofs over {mints} mints", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _one_mint_a_line(body: dict[str, Any]) -> str:
    """The bundle's JSON, its keys in their order, each mint on a line of its own:
    readable, and written by the standard library's C encoder (an indented dump of
    10,000 mints takes 4 times longer)."""
    parts = []
    for key, value in body.items():
        if key == "mints":
            mints = ",\n".join(json.dumps(m, ensure_ascii=False) for m in value)
            text = f"[\n{mints}\n]"
        else:
            text = json.dumps(value, ensure_ascii=False)
        parts.append(f"{json.dumps(key, ensure_ascii=False)}: {text}")
    return "{" + ", ".join(parts) + "}\n"


def check_proof(ctx: Context, args: argparse.Namespace) -> int:
    """The offline verifier's own code on a bundle: 0 when it verifies, 1 when it fails."""
    if not ctx.json:
        argv = [args.file, "--key", args.key]
        argv += ["--previous", args.previous] if args.previous else []
        argv += ["--lang", args.lang] if args.lang else []
        return verify.main(argv)
    lang = verify.pick_language(args.lang, os.environ)
    try:
        previous = verify.read_note(args.previous) if args.previous else None
        result = verify.check_bundle(verify.read_bundle(args.file), args.key, previous)
    except verify.Failure as failure:
        print_json({"ok": False, "error": failure.message(lang)})
        return 1
    print_json(
        {
            "ok": True,
            "plant": result.plant,
            "backer": result.backer,
            "tree_size": result.tree_size,
            "balance_units": result.balance_units,
            "credited_mints": result.credited_mints,
            "previous_size": result.previous_size,
            "message": result.message(lang),
        }
    )
    return 0


def log_key(ctx: Context, args: argparse.Namespace) -> int:
    """Print the plant's verifier key (the signing key is created when absent)."""
    plant = ctx.plant(args.plant)
    signer = log_signer(ctx.config)
    vkey = signer.vkey(plant.id)
    if ctx.json:
        print_json({"origin": signer.origin(plant.id), "vkey": vkey})
    else:
        print(vkey)
    return 0


def log_checkpoint(ctx: Context, args: argparse.Namespace) -> int:
    """Print the plant's newest signed checkpoint; exit 1 before its first mint."""
    plant = ctx.plant(args.plant)
    with ctx.store.read() as conn:
        note = tlog.newest_checkpoint(conn, plant.id)
    if note is None:
        raise Failure(f"{plant.id} has no mint yet: its log is empty")
    if ctx.json:
        print_json({"checkpoint": note})
    else:
        sys.stdout.write(note)
    return 0
