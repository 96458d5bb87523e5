"""The verifiable ledger end to end, through the `heliod` command as a user runs it
(docs/verification.md): a backer's bundle checked by `python3 verify.py` in a virtual
environment with no package, and every tampering the log must expose, on SQLite."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.helpers_cli import heliod, heliod_json, readings_csv, write_config

T0 = datetime(2021, 6, 1, 8, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]
VERIFY = ROOT / "rewards" / "tlog" / "verify.py"


def ts(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


FIRST_REGISTER = "backer,amount\nalice,100\nbob,100\ncarol,100\n"


def build(
    tmp_path: Path, first_register: str = FIRST_REGISTER, key: Path | None = None
) -> tuple[Path, str]:
    """Five MWh over three register states, the last one completed by an accepted jump
    (`key`: the signing key to use, copied in; default a new one)."""
    url = f"sqlite:///{tmp_path / 'heliod.db'}"
    cfg = write_config(tmp_path, url, decimals=2, tokens="1")
    if key is not None:
        (tmp_path / "state").mkdir(mode=0o700)
        shutil.copy(key, tmp_path / "state" / "log-signing.pem")
    (tmp_path / "b1.csv").write_text(first_register)
    assert (
        heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b1.csv")).returncode == 0
    )
    rows = [(ts(i), str(4000 * i)) for i in range(502)]  # 2 MWh (4 kWh a minute)
    readings_csv(tmp_path / "r1.csv", rows)
    assert (
        heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r1.csv")).returncode
        == 0
    )
    assert len(heliod_json(cfg, "account")["mints"]) == 2
    # A register change: bob doubles, dave joins with a share of 50.5.
    (tmp_path / "b2.csv").write_text("backer,amount\nbob,200\ndave,50.5\n")
    heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b2.csv"))
    rows = [(ts(i), str(4000 * i)) for i in range(502, 1004)]
    readings_csv(tmp_path / "r2.csv", rows)
    heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r2.csv"))
    assert len(heliod_json(cfg, "account")["mints"]) == 2
    # Another change (carol leaves), then a jump of 1 MWh in a minute, quarantined.
    (tmp_path / "b3.csv").write_text("backer,amount\ncarol,0\n")
    heliod(cfg, "backers", "import", "--plant", "p1", str(tmp_path / "b3.csv"))
    base = 4000 * 1003
    rows = [(ts(1004), str(base + 1_000_000)), (ts(1005), str(base + 1_004_000))]
    rows += [(ts(1006 + i), str(base + 1_004_000 + 4000 * i)) for i in range(1, 4)]
    readings_csv(tmp_path / "r3.csv", rows)
    heliod(cfg, "readings", "import", "--device", "inv1", str(tmp_path / "r3.csv"))
    heliod_json(cfg, "account")
    [jump] = [a for a in heliod_json(cfg, "anomalies", "list") if a["status"] == "quarantined"]
    assert heliod(cfg, "anomalies", "accept", str(jump["id"]), "--yes").returncode == 0
    minted = heliod_json(cfg, "account")["mints"]
    assert [m["mwh_index"] for m in minted] == [5]  # completed by the decision
    vkey = heliod(cfg, "log", "key", "--plant", "p1").stdout.strip()
    assert vkey.startswith("heliod/p1+")
    return cfg, vkey


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return build(tmp_path_factory.mktemp("tlog"))


def copy(built: tuple[Path, str], tmp_path: Path) -> Path:
    """A copy of the built ledger (database, key, configuration) to tamper with."""
    cfg, _vkey = built
    folder = cfg.parent
    for name in ("heliod.db", "heliod.toml"):
        shutil.copy(folder / name, tmp_path / name)
    shutil.copytree(folder / "state", tmp_path / "state")
    text_ = (tmp_path / "heliod.toml").read_text().replace(str(folder), str(tmp_path))
    (tmp_path / "heliod.toml").write_text(text_)
    return tmp_path / "heliod.toml"


def test_a_backers_bundle_verifies_with_python3_alone(
    built: tuple[Path, str], tmp_path: Path
) -> None:
    cfg, vkey = built
    assert heliod(cfg, "ledger", "verify").returncode == 0
    out = tmp_path / "dave.json"
    proc = heliod(cfg, "ledger", "prove", "--plant", "p1", "--backer", "dave", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    bundle = json.loads(out.read_text())
    assert bundle["tree_size"] == 5
    assert [m["register"] is not None for m in bundle["mints"]] == [False, False, True, True, True]
    # A virtual environment without any package, and the verifier file alone.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python3"
    listed = subprocess.run(
        [
            str(python),
            "-c",
            "import sys, pkgutil; print(sorted(m.name for m in pkgutil.iter_modules() if 'site-packages' in str(m.module_finder)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.strip() == "[]"
    shutil.copy(VERIFY, tmp_path / "verify.py")
    run = subprocess.run(
        [str(python), "verify.py", "dave.json", "--key", vkey, "--lang", "en"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    balances = heliod_json(cfg, "balances")[0]["balances"]
    dave = next(b for b in balances if b["backer"] == "dave")
    assert str(dave["units"]) in run.stdout
    # `ledger check-proof` runs the same code.
    checked = (
        heliod_json(Path("/dev/null"), "ledger", "check-proof", str(out), "--key", vkey)
        if False
        else None
    )
    proc = heliod(None, "ledger", "check-proof", str(out), "--key", vkey, "--json")
    assert proc.returncode == 0, proc.stderr
    checked = json.loads(proc.stdout)
    assert checked["ok"] is True
    assert checked["balance_units"] == dave["units"]
    # Edited by hand: one unit more for dave in one mint.
    credited = next(m for m in bundle["mints"] if m["credit"])
    credited["credit"]["units"] += 1
    (tmp_path / "edited.json").write_text(json.dumps(bundle))
    run = subprocess.run(
        [str(python), "verify.py", "edited.json", "--key", vkey],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert (
        heliod(
            None, "ledger", "check-proof", str(tmp_path / "edited.json"), "--key", vkey
        ).returncode
        == 1
    )


def _sql(cfg: Path, *statements: str) -> None:
    engine = create_engine(f"sqlite:///{cfg.parent / 'heliod.db'}")
    with engine.begin() as conn:
        for s in statements:
            conn.execute(text(s))
    engine.dispose()


def _checkpoint(cfg: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    note = folder / "seen.note"
    proc = heliod(cfg, "log", "checkpoint", "--plant", "p1")
    assert proc.returncode == 0, proc.stderr
    note.write_text(proc.stdout)
    return note


def _prove_and_check(
    cfg: Path, tmp_path: Path, vkey: str, previous: Path
) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "after.json"
    assert (
        heliod(
            cfg, "ledger", "prove", "--plant", "p1", "--backer", "alice", "-o", str(out)
        ).returncode
        == 0
    )
    return subprocess.run(
        [sys.executable, "-I", str(VERIFY), str(out), "--key", vkey, "--previous", str(previous)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (
            "UPDATE credits SET units = CAST(CAST(units AS INTEGER) + 1 AS TEXT) WHERE id = (SELECT MIN(id) FROM credits WHERE mwh_index = 3)",
            "mint 3",
        ),
        ("DELETE FROM mints WHERE mwh_index = 4", "4"),
        # alice's first row (100) and bob's second (200) trade their weights
        (
            "UPDATE shares SET weight = CASE id WHEN 1 THEN '200' ELSE '100' END WHERE id IN (1, 4)",
            "mint 1",
        ),
    ],
    ids=["credit-units", "delete-mint", "swap-weights"],
)
def test_tampering_is_named_by_ledger_verify(
    built: tuple[Path, str], tmp_path: Path, tamper: str, named: str
) -> None:
    cfg = copy(built, tmp_path)
    assert heliod(cfg, "ledger", "verify").returncode == 0
    _sql(cfg, tamper)
    proc = heliod(cfg, "ledger", "verify")
    assert proc.returncode == 1
    log_lines = [line for line in proc.stderr.splitlines() if "log" in line or "checkpoint" in line]
    assert log_lines, proc.stderr
    assert named in log_lines[0], proc.stderr


def test_a_ledger_rebuilt_with_another_register_fails_against_an_earlier_checkpoint(
    built: tuple[Path, str], tmp_path: Path
) -> None:
    cfg, vkey = built
    seen = _checkpoint(cfg, tmp_path / "seen")  # what the platform and the backers hold
    # The operator rebuilds the ledger from the same readings with a register of their
    # own (bob's first share doubled), signed with the same key.
    other = tmp_path / "rebuilt"
    other.mkdir()
    forged = FIRST_REGISTER.replace("bob,100", "bob,200")
    cfg2, vkey2 = build(other, forged, key=cfg.parent / "state" / "log-signing.pem")
    assert vkey2 == vkey
    # The rebuilt ledger is consistent with itself...
    assert heliod(cfg2, "ledger", "verify").returncode == 0
    # ...but not with the checkpoint the backer kept.
    run = _prove_and_check(cfg2, tmp_path, vkey, seen)
    assert run.returncode == 1, run.stdout + run.stderr


def test_after_a_credit_is_changed_a_new_bundle_fails_against_the_earlier_checkpoint(
    built: tuple[Path, str], tmp_path: Path
) -> None:
    cfg = copy(built, tmp_path)
    _cfg, vkey = built
    seen = _checkpoint(cfg, tmp_path)
    assert _prove_and_check(cfg, tmp_path, vkey, seen).returncode == 0
    # History rewritten by hand, log included: alice's credit of mint 3 raised, its leaf
    # rebuilt, the log's newest checkpoint re-signed by the gateway's key.
    _sql(
        cfg,
        "UPDATE credits SET units = CAST(CAST(units AS INTEGER) + 1 AS TEXT) WHERE backer = 'alice' AND mwh_index = 3",
        "DELETE FROM log_leaves",
        "DELETE FROM log_checkpoints",
        "DELETE FROM log_keys",  # else the accountant refuses to build a signed log again
    )
    heliod_json(cfg, "account")  # builds the log again from the stored mints
    run = _prove_and_check(cfg, tmp_path, vkey, seen)
    assert run.returncode == 1, run.stdout + run.stderr
