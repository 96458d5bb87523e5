"""The command line as a newcomer meets it: suggestions, hints and plain messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from heliod.daemon.config import ConfigError, loader
from tests.helpers_cli import heliod, heliod_json, readings_csv, write_config
from tests.support import ROOT

EXAMPLE = ROOT / "examples" / "demo"


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["acount"], "did you mean 'account'?"),
        (["ledger", "verfy"], "did you mean 'verify'?"),
        (["backers", "imprt"], "did you mean 'import'?"),
    ],
)
def test_a_mistyped_command_gets_the_closest_one(args: list[str], suggestion: str) -> None:
    proc = heliod(None, *args)
    assert proc.returncode == 2
    assert suggestion in proc.stderr, proc.stderr


def test_a_missing_default_file_says_how_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "DEFAULT_PATH", tmp_path / "etc" / "heliod.toml")
    with pytest.raises(ConfigError) as caught:
        loader.load_config(None, env={})
    assert "-c PATH or $HELIOD_CONFIG" in caught.value.problems[0]
    with pytest.raises(ConfigError) as named:  # a file the user named: no hint needed
        loader.load_config(tmp_path / "mine.toml", env={})
    assert "$HELIOD_CONFIG" not in named.value.problems[0]


def _example(tmp_path: Path) -> Path:
    """The sample plant's configuration, with its readings imported."""
    for name in ("heliod.toml", "backers.csv", "readings-inv1.csv"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    cfg = tmp_path / "heliod.toml"
    imported = heliod(
        cfg, "readings", "import", "--device", "inv1", str(tmp_path / "readings-inv1.csv")
    )
    assert imported.returncode == 0, imported.stderr
    return cfg


def test_importing_stored_rows_again_says_already_stored(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    rows = [("2024-03-01T10:00:00Z", "100.0"), ("2024-03-01T10:05:00Z", "200.0")]
    path = readings_csv(tmp_path / "r.csv", rows)
    first = heliod_json(cfg, "readings", "import", "--device", "inv1", str(path))
    assert (first["stored"], first["already_stored"], first["rejected"]) == (2, 0, 0)
    again = heliod(cfg, "readings", "import", "--device", "inv1", str(path))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "inv1: 2 rows, 0 stored, 2 already stored"
    # A different value at a stored time is not "already stored": it is rejected.
    other = readings_csv(tmp_path / "o.csv", [("2024-03-01T10:05:00Z", "250.0")])
    data = heliod_json(cfg, "readings", "import", "--device", "inv1", str(other))
    assert (data["already_stored"], data["rejected"]) == (0, 1)


def test_sync_status_says_when_the_push_is_not_configured(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    proc = heliod(cfg, "sync", "status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("the push to the platform is not configured")
    assert heliod_json(cfg, "sync", "status")["configured"] is False


def test_readings_list_shows_each_reading_s_fate(tmp_path: Path) -> None:
    cfg = _example(tmp_path)
    bad = readings_csv(tmp_path / "bad.csv", [("2017-06-01T00:00:00Z", "1.0")])  # in the past
    heliod(cfg, "readings", "import", "--device", "inv1", str(bad))
    before = heliod_json(cfg, "readings", "list", "--device", "inv1", "--limit", "1000")["readings"]
    statuses = {r["status"] for r in before}
    assert "pending" in statuses
    assert "rejected: timestamp_not_after_last (energy_wh = 1.000)" in statuses
    assert heliod(cfg, "account").returncode == 0
    after = heliod_json(cfg, "readings", "list", "--device", "inv1", "--limit", "1000")["readings"]
    statuses = [r["status"] for r in after]
    assert statuses.count("outlier") == 1  # the sample's glitch
    assert statuses[-1] == "pending"  # the last reading waits for the next one
    assert statuses.count("final") == len(after) - 3  # 1 outlier, 1 pending, 1 rejected
    window = heliod_json(
        cfg,
        "readings",
        "list",
        "--device",
        "inv1",
        "--from",
        "2017-06-02T09:15:00Z",
        "--to",
        "2017-06-02T09:25:00Z",
    )["readings"]
    assert [r["status"] for r in window] == ["final", "outlier", "final"]
    text = heliod(cfg, "readings", "list", "--device", "inv1", "--limit", "2").stdout
    assert text.splitlines()[0].split() == ["at", "status", "energy_wh", "power_w"]


def test_an_outlier_cannot_be_accepted_and_is_named_with_an(tmp_path: Path) -> None:
    cfg = _example(tmp_path)
    assert heliod(cfg, "account").returncode == 0
    proc = heliod(cfg, "anomalies", "accept", "1", "--yes")
    assert proc.returncode == 2
    assert "anomaly 1 is an outlier with status recorded" in proc.stderr, proc.stderr


def test_the_demo_says_it_never_reads_a_configuration(tmp_path: Path) -> None:
    proc = heliod(tmp_path / "heliod.toml", "demo", "--speed", "-1")
    assert proc.returncode == 2  # the speed is refused: the demo itself never starts
    assert "the demo never reads a configuration file" in proc.stderr
