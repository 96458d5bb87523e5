"""`sync status`, `sync retry [ID]` and `api-token new NAME`."""

from __future__ import annotations

import argparse
from typing import Any

from heliod.daemon.cli.commands.context import Context, UsageError, now_us
from heliod.daemon.cli.output import print_json
from heliod.daemon.cli.tokens import new_token
from heliod.daemon.jobs.push import sync_retry as requeue
from heliod.daemon.read.deliveries import sync_status as status


def render_status(status: dict[str, Any]) -> str:
    """The text of `heliod sync status` for people."""
    lines = [
        f"{status['delivered']} delivered, {status['pending']} pending, "
        f"{status['rejected']} rejected"
    ]
    for plant, p in status["plants"].items():
        lines.append(
            f"{plant}: {p['minted']} minted, {p['goal_events']} milestone/challenge events; "
            f"{p['delivered']} delivered, {p['pending']} pending, {p['rejected']} rejected"
        )
        head = p["next"]
        if head is not None and head["attempts"]:
            why = head["last_error"] or "-"
            tries = f"{head['attempts']} attempt" + ("s" if head["attempts"] > 1 else "")
            lines.append(
                f"  next {head['id']}: {tries}, "
                f"next at {head['next_attempt_at']}, last error: {why}"
            )
        elif head is not None:
            lines.append(f"  next {head['id']}: not tried yet")
    if status["rejected_events"]:
        lines.append("rejected (re-queue with `heliod sync retry [ID]`):")
        for r in status["rejected_events"]:
            lines.append(f"  {r['id']}  {r['rejected_at']}  {r['last_error']}")
    return "\n".join(lines)


def sync_status(ctx: Context, _args: argparse.Namespace) -> int:
    """Delivery of the mint, milestone and challenge events: pending, delivered, parked."""
    data = {"configured": ctx.config.platform is not None, **status(ctx.store)}
    if ctx.json:
        print_json(data)
        return 0
    if not data["configured"]:
        print(
            "the push to the platform is not configured (no [platform] table): "
            "nothing is sent; the counts below are what would be"
        )
    print(render_status(data))
    return 0


def sync_retry(ctx: Context, args: argparse.Namespace) -> int:
    """Re-queue parked events (all, or one by its id)."""
    event_id = args.id
    try:
        count = requeue(ctx.store, event_id, now_us())
    except ValueError as exc:
        raise UsageError(f"sync retry: {exc}") from None
    except LookupError as exc:
        raise UsageError(f"sync retry: no mint {exc}") from None
    if ctx.json:
        print_json({"requeued": count})
    else:
        print(f"{count} event(s) re-queued")
    return 0


def token_new(ctx: Context, args: argparse.Namespace) -> int:
    """Print a new random API token and the configuration line with its hash."""
    name = args.name
    try:
        token, line = new_token(name)
    except ValueError as exc:
        raise UsageError(f"api-token new: {exc}") from None
    if ctx.json:
        print_json({"name": name, "token": token, "config": line})
    else:
        print(token)
        print(f"# add to [api] tokens in heliod.toml (the token itself is not stored):\n{line}")
    return 0
