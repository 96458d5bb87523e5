"""`heliod run` (the daemon) and `heliod demo` (a whole simulated plant on this machine).

These two are the only commands that load the running service (daemon/boot/build.py
and runtime.py): the others open the store, do their work and exit.
"""

from __future__ import annotations

import argparse
import sys

from heliod.daemon.cli.commands.context import Context


def run(ctx: Context, _args: argparse.Namespace) -> int:
    """The daemon, until SIGTERM or SIGINT."""
    from heliod.daemon.boot.build import run_daemon  # noqa: PLC0415 - the daemon's weight

    return run_daemon(ctx.config)


def demo(ctx: Context, args: argparse.Namespace) -> int:
    """The demo plant; it never reads a configuration file (docs/cli.md, "demo")."""
    from heliod.daemon.cli.demo import run_demo  # noqa: PLC0415 - the daemon's weight

    if getattr(args, "config", None):
        print(
            f"heliod: the demo never reads a configuration file: {args.config} is ignored "
            "(the demo runs a simulated plant on a fresh temporary store)",
            file=sys.stderr,
        )
    return run_demo(speed=args.speed, port=args.port, duration=args.duration, as_json=ctx.json)
