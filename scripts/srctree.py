"""Type-check heliod's packages as `heliod.*`, or lay out the tree that makes that possible.

The folders daemon/, adapters/, rewards/ and config/profiles/ are installed as
heliod.daemon, heliod.adapters, … through the `package-dir` mapping in pyproject.toml.
An editable install serves them through an import hook that neither mypy nor
import-linter can follow, so this script builds a directory holding `heliod/` with one
symlink per mapped package (heliod stays a namespace package, as when installed) and runs
the tools against it. mypy's error paths are rewritten back to the repository's paths.

    python scripts/srctree.py tree       # print the directory to put on PYTHONPATH
    python scripts/srctree.py mypy [ARGS] # mypy over every mapped package
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_dirs(root: Path) -> dict[str, Path]:
    """Top-level `heliod.X` packages of the package-dir mapping and their folders."""
    with (root / "pyproject.toml").open("rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return {
        name: root / folder
        for name, folder in mapping.items()
        if name.startswith("heliod.") and name.count(".") == 1
    }


def build_tree(root: Path, dest: Path) -> Path:
    """Create (or refresh) dest/heliod/<X> -> <folder> symlinks; returns dest."""
    pkg = dest / "heliod"
    pkg.mkdir(parents=True, exist_ok=True)
    wanted = {name.split(".", 1)[1]: folder for name, folder in package_dirs(root).items()}
    for entry in pkg.iterdir():
        if entry.is_symlink() and entry.name not in wanted:
            entry.unlink()
    for sub, folder in wanted.items():
        link = pkg / sub
        if link.is_symlink() and Path(os.readlink(link)) == folder:
            continue
        if link.is_symlink():
            link.unlink()
        link.symlink_to(folder, target_is_directory=True)
    return dest


def default_tree() -> Path:
    """Where the tree lives: inside the venv, which every tool already ignores."""
    venv = Path(os.environ.get("VIRTUAL_ENV", sys.prefix))
    return venv / "heliod-src"


def run_mypy(root: Path, tree: Path, extra: list[str]) -> int:
    """Run mypy on every mapped package from inside the tree; print repo-relative paths."""
    packages = sorted(package_dirs(root))
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(root / "pyproject.toml")]
    cmd += ["--cache-dir", str(root / ".mypy_cache"), *extra]
    for name in packages:
        cmd += ["-p", name]
    env = {**os.environ, "MYPYPATH": str(tree)}
    # S603: the command is our own interpreter running mypy on our own packages.
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    # mypy names files relative to its cwd (the tree): heliod/rewards/x.py -> rewards/x.py
    folders = {
        name.split(".", 1)[1]: folder.relative_to(root).as_posix()
        for name, folder in package_dirs(root).items()
    }
    pattern = re.compile(r"^(?:" + re.escape(str(tree)) + r"/)?heliod/([^/]+)/", re.M)

    def to_repo(match: re.Match[str]) -> str:
        sub = match.group(1)
        return f"{folders[sub]}/" if sub in folders else match.group(0)

    sys.stdout.write(pattern.sub(to_repo, proc.stdout))
    sys.stderr.write(pattern.sub(to_repo, proc.stderr))
    return proc.returncode


def main(argv: list[str]) -> int:
    """Command-line entry point."""
    if not argv or argv[0] not in {"tree", "mypy"}:
        sys.stderr.write(__doc__ or "")
        return 2
    tree = build_tree(ROOT, default_tree())
    if argv[0] == "tree":
        print(tree)
        return 0
    return run_mypy(ROOT, tree, argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
