"""`sync status`, `sync retry [ID]` and `api-token new NAME`."""

from __future__ import annotations

from heliod.daemon.commands.context import Context, UsageError, now_us
from heliod.daemon.output import print_json
from heliod.daemon.sync import render_status
from heliod.daemon.sync import sync_retry as requeue
from heliod.daemon.sync import sync_status as status
from heliod.daemon.tokens import new_token


def sync_status(ctx: Context) -> int:
    """Delivery of the mint events to the platform: pending, delivered, parked."""
    data = status(ctx.store)
    if ctx.json:
        print_json(data)
    else:
        print(render_status(data))
    return 0


def sync_retry(ctx: Context, event_id: str | None) -> int:
    """Re-queue parked events (all, or one `plant:k`)."""
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


def token_new(ctx: Context, name: str) -> int:
    """Print a new random API token and the configuration line with its hash."""
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
