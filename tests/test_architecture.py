"""The house rules that keep the accounting exact and the arrows pointing inward.

rewards/ is the pure domain (docs/architecture.md, "Rooms"): standard library only, no
network, no store, no binary floats, no clock. import-linter checks the package graph;
the AST checks below look at what import-linter cannot see (calls to float, float
literals, clock reads). Each checker is also run on known-bad sources, so none of them
can pass vacuously.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
REWARDS = ROOT / "rewards"

# Standard-library modules rewards/ must not use either: the network, processes, a
# database, randomness (replays must be deterministic) and the clock (time is a parameter).
BANNED_STDLIB = {
    "asyncio": "network/event loop",
    "ftplib": "network",
    "http": "network",
    "imaplib": "network",
    "poplib": "network",
    "select": "network",
    "selectors": "network",
    "smtplib": "network",
    "socket": "network",
    "socketserver": "network",
    "ssl": "network",
    "urllib": "network",
    "xmlrpc": "network",
    "subprocess": "processes",
    "sqlite3": "storage belongs to adapters",
    "random": "replays must be deterministic",
    "secrets": "replays must be deterministic",
    "time": "the clock: time arrives as a parameter",
}
CLOCK_ATTRIBUTES = {"now", "utcnow", "today"}


def _srctree() -> ModuleType:
    spec = importlib.util.spec_from_file_location("heliod_srctree", ROOT / "scripts/srctree.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lint_imports(pythonpath: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with `pythonpath` first on the path."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [exe, "--config", str(config), "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def module_name(path: Path, package_root: Path) -> str:
    """Dotted name of a file under rewards/ as installed: heliod.rewards.x.y."""
    parts = list(path.relative_to(package_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["heliod", "rewards", *parts])


def import_violations(
    source: str, module: str = "heliod.rewards.energy", is_package: bool = False
) -> list[str]:
    """Imports that leave the pure domain: non-stdlib, banned stdlib, our other packages."""
    found: list[str] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        lineno = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                targets = [".".join([*base, *([node.module] if node.module else [])])]
            else:
                targets = [node.module or ""]
        for target in targets:
            top = target.split(".")[0]
            if target == "heliod.rewards" or target.startswith("heliod.rewards."):
                continue
            if top == "__future__":
                continue
            if top == "heliod":
                found.append(f"line {lineno}: imports {target} (rewards imports no adapter)")
            elif top in BANNED_STDLIB:
                found.append(f"line {lineno}: imports {target} ({BANNED_STDLIB[top]})")
            elif top not in sys.stdlib_module_names:
                found.append(f"line {lineno}: imports {target} (standard library only)")
    return found


def float_violations(source: str) -> list[str]:
    """Calls to float() and float literals: binary floats never enter accounting."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "float":
                found.append(f"line {node.lineno}: calls float()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, float):
            found.append(f"line {node.lineno}: float literal {node.value!r}")
    return found


def clock_violations(source: str) -> list[str]:
    """Reads of the wall clock (datetime.now, date.today, …) in any form."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in CLOCK_ATTRIBUTES:
            found.append(f"line {node.lineno}: reads the clock (.{node.attr})")
    return found


def reward_files() -> list[Path]:
    """Every Python file of heliod.rewards."""
    return sorted(REWARDS.rglob("*.py"))


# --- import-linter ------------------------------------------------------------------


def test_import_contracts_hold(tmp_path: Path) -> None:
    tree = _srctree().build_tree(ROOT, tmp_path)
    proc = lint_imports(tree, ROOT / "pyproject.toml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout, proc.stdout


def _empty_tree(dest: Path) -> None:
    """heliod's packages and modules as empty files: every contract's modules exist."""
    for name, folder in _srctree().package_dirs(ROOT).items():
        sub = name.split(".", 1)[1]
        for source in folder.rglob("*.py"):
            target = dest / "heliod" / sub / source.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("")


@pytest.mark.parametrize(
    ("offender", "line"),
    [
        ("rewards/bad.py", "from heliod.adapters import errors\n"),
        ("rewards/bad.py", "import heliod.daemon\n"),
        ("rewards/bad.py", "import sqlalchemy\n"),
        ("rewards/verify.py", "from heliod.rewards.allocation import Allocator\n"),
        ("rewards/verify_stored.py", "from heliod.rewards import register\n"),
        ("adapters/bad.py", "from heliod import daemon\n"),
        ("daemon/http/bad.py", "from heliod.daemon.cli import output\n"),
        ("daemon/jobs/bad.py", "from heliod.daemon.read import plants\n"),
        ("daemon/jobs/bad.py", "from heliod.daemon.config import model\n"),
        ("daemon/read/bad.py", "import heliod.daemon.config\n"),
        ("daemon/jobs/bad.py", "import sqlalchemy\n"),
        ("daemon/http/bad.py", "from sqlalchemy import select\n"),
        ("daemon/cli/commands/bad.py", "from heliod.daemon.boot import runtime\n"),
    ],
)
def test_import_contracts_catch_a_violation(tmp_path: Path, offender: str, line: str) -> None:
    # heliod's module tree, all empty but the offender, checked with the real contracts.
    _empty_tree(tmp_path)
    (tmp_path / "heliod" / offender).write_text(line)
    proc = lint_imports(tmp_path, ROOT / "pyproject.toml")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "BROKEN" in proc.stdout, proc.stdout


# --- AST checks over rewards/ -------------------------------------------------------


@pytest.mark.parametrize("path", reward_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_rewards_module_is_pure(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    problems = (
        import_violations(source, module_name(path, REWARDS), path.name == "__init__.py")
        + float_violations(source)
        + clock_violations(source)
    )
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_rewards_has_modules() -> None:
    # Guards the parametrization above against an empty glob.
    assert len(reward_files()) >= 3


BAD_SOURCES: dict[str, tuple[str, Callable[[str], list[str]]]] = {
    "sqlalchemy": ("import sqlalchemy.orm", import_violations),
    "third-party": ("from pydantic import BaseModel", import_violations),
    "adapters": ("from heliod.adapters.errors import RetryableError", import_violations),
    "relative-escape": ("from ..daemon import cli", import_violations),
    "socket": ("import socket", import_violations),
    "urllib": ("from urllib.request import urlopen", import_violations),
    "time-module": ("from time import monotonic", import_violations),
    "float-call": ("x = float('1.5')", float_violations),
    "float-literal": ("limit = 0.9 * r", float_violations),
    "datetime-now": ("from datetime import datetime\nt = datetime.now()", clock_violations),
    "datetime-utcnow": ("import datetime\nt = datetime.datetime.utcnow()", clock_violations),
    "date-today": ("from datetime import date\nd = date.today()", clock_violations),
    "now-as-factory": ("field(default_factory=datetime.now)", clock_violations),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_checkers_catch_violations(case: str) -> None:
    source, checker = BAD_SOURCES[case]
    found = checker(source)
    assert found, f"{case}: not detected in {source!r}"


def test_checkers_accept_pure_code() -> None:
    source = textwrap.dedent(
        """
        from __future__ import annotations
        from dataclasses import dataclass
        from datetime import UTC, datetime, timedelta
        from decimal import Decimal
        from fractions import Fraction
        from heliod.rewards.units import quantize
        from . import readings
        from .energy import judge

        def bound(capacity_kw: Decimal, seconds: int, at: datetime) -> Decimal:
            return capacity_kw * 1000 * max(seconds, 60) / 3600 + Decimal("0.9")

        def f(x: float) -> bool:
            return isinstance(x, float)
        """
    )
    assert import_violations(source, "heliod.rewards.energy") == []
    assert float_violations(source) == []
    assert clock_violations(source) == []
