"""`heliod [-c CONFIG] COMMAND`: the command table, parsing, dispatch and exit codes.

Exit codes (docs/cli.md): 0 success, 1 the command ran and found a failure, 2 usage or
configuration error. Every command that prints data takes `--json`.

Each command is one row of `COMMANDS`: its words, its help, its arguments and the
function that runs it, `heliod.daemon.cli.commands.<module>.<function>(ctx, args)`. The
module is imported only when its command runs, so `--help` and `check-config` stay fast
and `run` alone loads the daemon.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from heliod.adapters.store import OperationalError, StoreError
from heliod.adapters.store.shares import RegisterRefused
from heliod.daemon.cli.commands.context import Context, Failure, UsageError
from heliod.daemon.config import ConfigError, load_config
from heliod.daemon.jobs.accountant import LedgerMismatch
from heliod.rewards.register_rows import InputError

Arg = tuple[tuple[str, ...], dict[str, Any]]  # add_argument's names and options


def arg(*names: str, **options: Any) -> Arg:
    """One argument of a command, as argparse's `add_argument` takes it."""
    return names, options


@dataclass(frozen=True)
class Command:
    """One row of the command table."""

    words: str  # "backers import"
    help: str
    run: str  # "register:import_backers": function of heliod.daemon.cli.commands.register
    args: tuple[Arg, ...] = ()
    needs_config: bool = True


YES = arg("--yes", action="store_true", help="answer the confirmation (needed without a terminal)")
TIME = {"metavar": "TIME"}

COMMANDS: tuple[Command, ...] = (
    Command(
        "run", "run the daemon: poll, subscribe, store, account, export, sync, serve", "daemon:run"
    ),
    Command(
        "demo",
        "a whole simulated plant on this machine, with the dashboard (reads no configuration)",
        "daemon:demo",
        (
            arg("--speed", type=float, default=None, help="simulated seconds per real second"),
            arg("--port", type=int, default=0, help="dashboard port (default: a free one)"),
            arg("--duration", type=float, default=None, help="stop after this many seconds"),
        ),
        needs_config=False,
    ),
    Command(
        "check-config",
        "validate the configuration file and print a summary",
        "checkconfig:check_config",
    ),
    Command(
        "scan",
        "find SunSpec models on a Modbus device and print their values",
        "devices:scan",
        (
            arg("--host"),
            arg("--port", type=int, default=502),
            arg("--unit", type=int, default=1),
            arg("--serial-port"),
            arg("--baudrate", type=int, default=9600),
            arg("--timeout", type=float, default=2.0),
        ),
        needs_config=False,
    ),
    Command(
        "read",
        "poll one configured device once and print its fields",
        "devices:read",
        (arg("device", metavar="DEVICE"),),
    ),
    Command(
        "backers import",
        "load share-register rows from a CSV (backer,amount[,valid_from])",
        "register:import_backers",
        (arg("--plant", required=True), arg("file", metavar="FILE.csv")),
    ),
    Command(
        "backers list",
        "weights and shares in force at a time",
        "register:list_backers",
        (arg("--plant", required=True), arg("--at", **TIME)),
    ),
    Command(
        "readings import",
        "backfill readings from a CSV (timestamp,energy_wh[,power_w])",
        "readings:import_readings",
        (arg("--device", required=True), arg("file", metavar="FILE.csv")),
    ),
    Command(
        "readings list",
        "a device's stored readings with their status (pending, final, outlier, rejected)",
        "readings:list_readings",
        (
            arg("--device", required=True),
            arg("--from", dest="from_", **TIME),
            arg("--to", **TIME),
            arg("--limit", type=int, default=100, metavar="N", help="at most N, the newest"),
        ),
    ),
    Command(
        "readings reset-clock",
        "record a clock reset decision for a device whose readings are ahead of the clock",
        "clocks:reset_clock",
        (arg("--device", required=True), YES),
    ),
    Command(
        "account",
        "account stored readings, mint and credit, then exit",
        "ledger:account",
        (
            arg(
                "--batch-size",
                type=int,
                default=5000,
                metavar="N",
                help="readings per transaction (default 5000)",
            ),
        ),
    ),
    Command(
        "balances",
        "balances per backer and undistributed per plant",
        "ledger:balances",
        (arg("--plant"),),
    ),
    Command(
        "milestones",
        "milestones and challenges with their status",
        "goals:milestones",
        (arg("--plant"),),
    ),
    Command(
        "ledger verify", "check every invariant of the ledger; exit 1 on failure", "ledger:verify"
    ),
    Command(
        "ledger export",
        "print mints and credits",
        "ledger:export",
        (arg("--format", choices=["csv", "json"], default="csv"),),
    ),
    Command(
        "ledger prove",
        "a backer's proof bundle over every mint of a plant (check it with verify.py)",
        "tlog:prove",
        (
            arg("--plant", required=True),
            arg("--backer", required=True),
            arg("--since", type=int, metavar="N", help="add the consistency proof from size N"),
            arg("-o", "--output", metavar="FILE", help="write the bundle here (default: stdout)"),
        ),
    ),
    Command(
        "ledger check-proof",
        "run the offline verifier on a bundle; exit 1 when it fails",
        "tlog:check_proof",
        (
            arg("file", metavar="FILE"),
            arg("--key", required=True, metavar="VKEY", help="the plant's verifier key"),
            arg("--previous", metavar="CHECKPOINT_FILE", help="a checkpoint kept earlier"),
            arg("--lang", choices=["en", "fr"], help="language of the messages"),
        ),
        needs_config=False,
    ),
    Command(
        "log key",
        "the plant's verifier key (created with the signing key when absent)",
        "tlog:log_key",
        (arg("--plant", required=True),),
    ),
    Command(
        "log checkpoint",
        "the plant's newest signed checkpoint",
        "tlog:log_checkpoint",
        (arg("--plant", required=True),),
    ),
    Command("anomalies list", "every anomaly with its status", "anomalies:list_anomalies"),
    Command(
        "anomalies accept",
        "credit a quarantined implausible jump",
        "anomalies:accept",
        (arg("id", type=int, metavar="ID"), YES),
    ),
    Command(
        "anomalies reject",
        "drop a quarantined implausible jump",
        "anomalies:reject",
        (arg("id", type=int, metavar="ID"),),
    ),
    Command(
        "sync status", "delivery state of the events pushed to the platform", "platform:sync_status"
    ),
    Command(
        "sync retry",
        "re-queue rejected events (all, or one ID: plant:k, plant:milestone:M, plant:challenge:C)",
        "platform:sync_retry",
        (arg("id", nargs="?", metavar="ID"),),
    ),
    Command(
        "api-token new",
        "print a new random token and its config line",
        "platform:token_new",
        (arg("name", metavar="NAME"),),
        needs_config=False,
    ),
)

GROUPS = {
    "backers": "the share register",
    "readings": "stored readings",
    "ledger": "the ledger of mints and credits",
    "log": "the verifiable ledger's key and checkpoints",
    "anomalies": "energy anomalies",
    "sync": "delivery to the platform",
    "api-token": "API tokens",
}
_INVALID_CHOICE = re.compile(r"argument (\w+): invalid choice: '([^']*)' \(choose from (.*)\)")


class Parser(argparse.ArgumentParser):
    """argparse, with the closest command suggested for a mistyped one."""

    def error(self, message: str) -> NoReturn:
        """Print the usage and the problem (and a suggestion), exit 2."""
        found = _INVALID_CHOICE.search(message)
        if found is not None:
            word, choices = found.group(2), re.findall(r"'([^']*)'", found.group(3))
            close = difflib.get_close_matches(word, choices, n=1)
            kind = "command" if found.group(1) == "COMMAND" else "action"
            message = f"unknown {kind} {word!r}" + (
                f"; did you mean {close[0]!r}?" if close else f" (one of {', '.join(choices)})"
            )
        super().error(message)


def parser() -> argparse.ArgumentParser:
    """The whole command line, built from the table."""
    common = Parser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        metavar="CONFIG",
        help="configuration file (default: $HELIOD_CONFIG, else /etc/heliod/heliod.toml)",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print data as JSON"
    )
    top = Parser(
        prog="heliod", parents=[common], description="Gateway daemon for a crowdfunded solar plant."
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, Any] = {}
    for command in COMMANDS:
        group, _, action = command.words.partition(" ")
        where = commands
        if action:
            if group not in groups:
                sub = commands.add_parser(group, help=GROUPS[group], parents=[common])
                groups[group] = sub.add_subparsers(dest="sub", metavar="ACTION", required=True)
            where = groups[group]
        name = action or group
        p = where.add_parser(name, help=command.help, parents=[common], description=command.help)
        for names, options in command.args:
            p.add_argument(*names, **options)
        p.set_defaults(command_row=command)
    return top


def _handler(command: Command) -> Any:
    module, function = command.run.split(":")
    return getattr(importlib.import_module(f"heliod.daemon.cli.commands.{module}"), function)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `heliod` command."""
    args = parser().parse_args(argv)
    command: Command = args.command_row
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx = Context(config=None, json=bool(getattr(args, "json", False)))
    try:
        if command.needs_config:
            ctx.config = load_config(getattr(args, "config", None))
            logging.getLogger().setLevel(ctx.config.daemon.log_level.upper())
        return int(_handler(command)(ctx, args))
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    except (UsageError, InputError, RegisterRefused) as exc:
        lines = getattr(exc, "problems", None) or [str(exc)]
        for line in lines:
            print(f"heliod: {line}", file=sys.stderr)
        return 2
    except (Failure, StoreError, LedgerMismatch) as exc:
        print(f"heliod: {exc}", file=sys.stderr)
        return 1
    except OperationalError as exc:
        print(f"heliod: the store failed: {exc.orig}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
