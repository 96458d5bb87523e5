"""Code-shape rules (CONTRIBUTING.md, "Code shape") that ruff and mypy do not check."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("daemon", "adapters", "rewards", "config/profiles")
MAX_LINES = 400  # "Aim for modules of 150-300 lines; past 400, split."
# The offline verifier is the one file a backer downloads and reads (docs/verification.md):
# it cannot be split, so it gets a limit of its own.
LONGER = {"rewards/tlog/verify.py": 900}
# A bare `# type: ignore` hides every error on its line; name the one you mean.
BARE_TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(?!\[)")


def package_files() -> list[Path]:
    """Python files of the installed packages, generated migrations excepted."""
    files: list[Path] = []
    for folder in PACKAGES:
        files += [
            p for p in (ROOT / folder).rglob("*.py") if "migrations/versions" not in p.as_posix()
        ]
    return sorted(files)


def too_long(path: Path, limit: int = MAX_LINES) -> str | None:
    """A message when the file has more than `limit` lines."""
    count = len(path.read_text(encoding="utf-8").splitlines())
    return f"{count} lines (split past {limit})" if count > limit else None


def bare_ignores(text: str) -> list[int]:
    """Line numbers of `# type: ignore` comments without an error code."""
    return [n for n, line in enumerate(text.splitlines(), 1) if BARE_TYPE_IGNORE.search(line)]


@pytest.mark.parametrize("path", package_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_shape(path: Path) -> None:
    problems = []
    limit = LONGER.get(path.relative_to(ROOT).as_posix(), MAX_LINES)
    if message := too_long(path, limit):
        problems.append(message)
    if lines := bare_ignores(path.read_text(encoding="utf-8")):
        problems.append(f"bare '# type: ignore' on lines {lines}: add the error code")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def test_checks_can_fail(tmp_path: Path) -> None:
    long_file = tmp_path / "long.py"
    long_file.write_text("x = 1\n" * (MAX_LINES + 1))
    assert too_long(long_file) is not None
    long_file.write_text("x = 1\n" * MAX_LINES)
    assert too_long(long_file) is None
    assert bare_ignores("a = b  # type: ignore\nc = d  # type: ignore[attr-defined]\n") == [1]


@pytest.mark.parametrize(
    "script", ["scripts/test.sh", "scripts/demo.sh", "scripts/systemd-check.sh", ".ci/run"]
)
def test_entry_scripts_are_executable(script: str) -> None:
    path = ROOT / script
    assert path.is_file(), script
    assert os.access(path, os.X_OK), (
        f"{script} lost its executable bit (git update-index --chmod=+x)"
    )
    assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
