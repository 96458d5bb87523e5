"""`heliod [-c CONFIG] COMMAND`: parsing, dispatch and exit codes (docs/cli.md).

Exit codes: 0 success, 1 the command ran and found a failure, 2 usage or configuration
error. Every command that prints data takes `--json`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from heliod.adapters.store import OperationalError, StoreError
from heliod.adapters.store.shares import RegisterRefused
from heliod.daemon.cli.commands.context import Context, Failure, UsageError
from heliod.daemon.config import ConfigError, load_config
from heliod.daemon.jobs.accountant import LedgerMismatch
from heliod.rewards.register_rows import InputError

Handler = Callable[[Context, argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
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
    parser = argparse.ArgumentParser(
        prog="heliod", parents=[common], description="Gateway daemon for a crowdfunded solar plant."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(
        name: str,
        help_: str,
        handler: Handler,
        parent: argparse._SubParsersAction[argparse.ArgumentParser] | None = None,
    ) -> argparse.ArgumentParser:
        p = (parent or sub).add_parser(name, help=help_, parents=[common], description=help_)
        p.set_defaults(handler=handler)
        return p

    cmd("run", "run the daemon: poll, subscribe, store, account, export, sync, serve", _run)
    demo = cmd("demo", "a whole simulated plant on this machine, with the dashboard", _demo)
    demo.add_argument("--speed", type=float, default=None, help="simulated seconds per real second")
    demo.add_argument("--port", type=int, default=0, help="dashboard port (default: a free one)")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    cmd("check-config", "validate the configuration file and print a summary", _check_config)
    scan = cmd("scan", "find SunSpec models on a Modbus device and print their values", _scan)
    scan.add_argument("--host")
    scan.add_argument("--port", type=int, default=502)
    scan.add_argument("--unit", type=int, default=1)
    scan.add_argument("--serial-port")
    scan.add_argument("--baudrate", type=int, default=9600)
    scan.add_argument("--timeout", type=float, default=2.0)
    read = cmd("read", "poll one configured device once and print its fields", _read)
    read.add_argument("device", metavar="DEVICE")

    backers = sub.add_parser("backers", help="the share register", parents=[common]).add_subparsers(
        dest="sub", metavar="ACTION", required=True
    )
    bi = cmd(
        "import",
        "load share-register rows from a CSV (backer,amount[,valid_from])",
        _backers_import,
        backers,
    )
    bi.add_argument("--plant", required=True)
    bi.add_argument("file", metavar="FILE.csv")
    bl = cmd("list", "weights and shares in force at a time", _backers_list, backers)
    bl.add_argument("--plant", required=True)
    bl.add_argument("--at", metavar="TIME")

    readings = sub.add_parser("readings", help="stored readings", parents=[common]).add_subparsers(
        dest="sub", metavar="ACTION", required=True
    )
    ri = cmd(
        "import",
        "backfill readings from a CSV (timestamp,energy_wh[,power_w])",
        _readings_import,
        readings,
    )
    ri.add_argument("--device", required=True)
    ri.add_argument("file", metavar="FILE.csv")

    acct = cmd("account", "account stored readings, mint and credit, then exit", _account)
    acct.add_argument(
        "--batch-size",
        type=int,
        default=5000,
        metavar="N",
        help="readings per transaction (default 5000)",
    )
    bal = cmd("balances", "balances per backer and undistributed per plant", _balances)
    bal.add_argument("--plant")

    ledger = sub.add_parser(
        "ledger", help="the ledger of mints and credits", parents=[common]
    ).add_subparsers(dest="sub", metavar="ACTION", required=True)
    cmd("verify", "check every invariant of the ledger; exit 1 on failure", _verify, ledger)
    ex = cmd("export", "print mints and credits", _export, ledger)
    ex.add_argument("--format", choices=["csv", "json"], default="csv")

    anomalies = sub.add_parser(
        "anomalies", help="energy anomalies", parents=[common]
    ).add_subparsers(dest="sub", metavar="ACTION", required=True)
    cmd("list", "every anomaly with its status", _anomalies_list, anomalies)
    acc = cmd("accept", "credit a quarantined implausible jump", _anomalies_accept, anomalies)
    acc.add_argument("id", type=int, metavar="ID")
    acc.add_argument(
        "--yes", action="store_true", help="answer the confirmation (needed without a terminal)"
    )
    rej = cmd("reject", "drop a quarantined implausible jump", _anomalies_reject, anomalies)
    rej.add_argument("id", type=int, metavar="ID")

    sync = sub.add_parser("sync", help="delivery to the platform", parents=[common]).add_subparsers(
        dest="sub", metavar="ACTION", required=True
    )
    cmd("status", "delivery state of the mint events", _sync_status, sync)
    sr = cmd("retry", "re-queue rejected events (all, or one ID plant:k)", _sync_retry, sync)
    sr.add_argument("id", nargs="?", metavar="ID")

    token = sub.add_parser("api-token", help="API tokens", parents=[common]).add_subparsers(
        dest="sub", metavar="ACTION", required=True
    )
    tn = cmd("new", "print a new random token and its config line", _token_new, token)
    tn.add_argument("name", metavar="NAME")
    return parser


# -- handlers: thin, the work is in heliod.daemon.cli.commands ------------------------------


def _check_config(ctx: Context, _: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.checkconfig import check_config

    return check_config(ctx)


def _backers_import(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.register import import_backers

    return import_backers(ctx, a.plant, a.file)


def _backers_list(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.register import list_backers

    return list_backers(ctx, a.plant, a.at)


def _readings_import(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.readings import import_readings

    return import_readings(ctx, a.device, a.file)


def _account(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.ledger import account

    if a.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    return account(ctx, a.batch_size)


def _balances(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.ledger import balances

    return balances(ctx, a.plant)


def _verify(ctx: Context, _: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.ledger import verify

    return verify(ctx)


def _export(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.ledger import export

    return export(ctx, a.format)


def _anomalies_list(ctx: Context, _: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.anomalies import list_anomalies

    return list_anomalies(ctx)


def _anomalies_accept(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.anomalies import accept

    return accept(ctx, a.id, a.yes)


def _anomalies_reject(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.anomalies import reject

    return reject(ctx, a.id)


def _run(ctx: Context, _: argparse.Namespace) -> int:
    from heliod.daemon.boot.build import run_daemon

    return run_daemon(ctx.config)


def _demo(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.demo import run_demo

    return run_demo(speed=a.speed, port=a.port, duration=a.duration, as_json=ctx.json)


def _scan(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.devices import scan

    return scan(ctx, a)


def _read(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.devices import read

    return read(ctx, a.device)


def _sync_status(ctx: Context, _: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.platform import sync_status

    return sync_status(ctx)


def _sync_retry(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.platform import sync_retry

    return sync_retry(ctx, a.id)


def _token_new(ctx: Context, a: argparse.Namespace) -> int:
    from heliod.daemon.cli.commands.platform import token_new

    return token_new(ctx, a.name)


# Commands that need no configuration file.
NO_CONFIG = {"demo", "scan", "api-token"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `heliod` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    as_json = bool(getattr(args, "json", False))
    ctx: Context | None = None
    try:
        if args.command in NO_CONFIG:
            ctx = Context(config=None, json=as_json)  # type: ignore[arg-type]
        else:
            config = load_config(getattr(args, "config", None))
            logging.getLogger().setLevel(config.daemon.log_level.upper())
            ctx = Context(config=config, json=as_json)
        return int(args.handler(ctx, args))
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
        if ctx is not None:
            ctx.close()


if __name__ == "__main__":
    sys.exit(main())
