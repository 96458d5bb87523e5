"""The pre-commit hooks run the checks of scripts/test.sh, at the versions pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        test_extra = tomllib.load(f)["project"]["optional-dependencies"]["test"]
    pins = {}
    for requirement in test_extra:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][^;\s]*)", requirement.strip())
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def _hooks() -> dict[str, dict[str, object]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def test_ruff_in_pre_commit_is_the_pinned_one() -> None:
    pins = _pins()
    assert "ruff" in pins, "pyproject.toml pins ruff (ruff==X.Y.Z in the test extra)"
    hooks = _hooks()
    for name in ("ruff-check", "ruff-format"):
        deps = hooks[name]["additional_dependencies"]
        assert deps == [f"ruff=={pins['ruff']}"], f"{name}: {deps}"


def test_pre_commit_runs_every_check_of_the_gate() -> None:
    hooks = _hooks()
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy", "lint-imports"}
    # mypy and lint-imports run from the venv that pyproject.toml's pins were installed in.
    assert "scripts/srctree.py mypy" in str(hooks["mypy"]["entry"])
    assert "scripts/srctree.py tree" in str(hooks["lint-imports"]["entry"])
    assert hooks["mypy"]["pass_filenames"] is False
