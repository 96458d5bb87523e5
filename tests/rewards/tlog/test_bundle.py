"""A backer's proof bundle, checked by the offline verifier: in process for each failure
code, and as a backer runs it (`python3 -I verify.py` in a virtual environment with no
package installed, from a folder outside the repository), in English and French."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import heliod.rewards.tlog.verify as verify_module
from heliod.rewards.tlog.leaves import BackerTree, mint_leaf, mint_leaf_hashes
from heliod.rewards.tlog.note import check_checkpoint, checkpoint_text
from heliod.rewards.tlog.tree import MerkleTree
from heliod.rewards.tlog.verify import MESSAGES, Failure, check_bundle, pick_language

from .ledger import Key, Log, build_log

VERIFY_PY = Path(verify_module.__file__)

EQUAL = {"ann": 1, "bob": 1, "cé": 1}
# Several register changes: equal thirds, then a decimal split with a newcomer and a
# backer leaving, then back to equal shares with one more.
REGISTERS: list[dict[str, Decimal | int]] = (
    [EQUAL] * 7
    + [{"ann": Decimal("2.5"), "bob": 0, "cé": Decimal("0.5"), "dan": Decimal("1000.125")}] * 6
    + [{"ann": 3, "bob": 3, "cé": 3, "dan": 3, "eve": 3}] * 5
)


@pytest.fixture(scope="module")
def log() -> Log:
    return build_log(REGISTERS, units=7)


def test_three_equal_backers_get_the_documented_credits() -> None:
    # docs/accounting.md's example: U = 1, three equal backers: 0, 0, 1, 0, 0, 1, 0.
    small = build_log([EQUAL] * 7, units=1)
    bundle = small.bundle("ann")
    assert [m["credit"]["units"] if m["credit"] else 0 for m in bundle["mints"]] == [
        0,
        0,
        1,
        0,
        0,
        1,
        0,
    ]
    assert [leaf["undistributed_units"] for leaf in small.leaves] == [1, 2, 0, 1, 2, 0, 1]
    result = check_bundle(bundle, small.key.vkey)
    assert (result.balance_units, result.entitlement, result.credited_mints) == (
        2,
        Fraction(7, 3),
        2,
    )


@pytest.mark.parametrize("backer", ["ann", "bob", "cé", "dan", "eve", "zoe"])
def test_every_backers_bundle_verifies_with_the_exact_balance(log: Log, backer: str) -> None:
    result = check_bundle(log.bundle(backer, since=4), log.key.vkey, log.checkpoint(4))
    assert result.balance_units == log.credited.get(backer, 0)
    assert result.entitlement == log.entitled.get(backer, 0)
    assert result.previous_size == 4
    json.dumps(log.bundle(backer))  # JSON-ready as it is


def fails(bundle: Any, key: str, previous: str | None = None) -> Failure:
    with pytest.raises(Failure) as caught:
        check_bundle(bundle, key, previous)
    failure = caught.value
    for lang in ("en", "fr"):
        assert failure.message(lang)  # every code has its words in both languages
    return failure


def first_credit(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in bundle["mints"] if m["credit"])


def test_edits_by_hand_fail_with_their_code(log: Log) -> None:
    key = log.key.vkey
    good = log.bundle("ann")

    b = copy.deepcopy(good)
    first_credit(b)["credit"]["units"] += 1
    assert fails(b, key).code == "credit_not_included"

    b = copy.deepcopy(good)
    b["mints"][8]["register"]["weight"] = "25"
    f = fails(b, key)
    assert (f.code, f.params) == ("register_not_included", {"mwh_index": 9})

    b = copy.deepcopy(good)
    del b["mints"][3]
    assert fails(b, key).code == "mint_count"

    b = copy.deepcopy(good)
    b["mints"][2], b["mints"][3] = b["mints"][3], b["mints"][2]
    assert fails(b, key).code == "mint_order"

    b = copy.deepcopy(good)
    proof = b["mints"][5]["inclusion"]
    proof[0], proof[1] = proof[1], proof[0]
    f = fails(b, key)
    assert (f.code, f.params) == ("leaf_not_included", {"mwh_index": 6})

    b = copy.deepcopy(good)
    b["mints"][5]["leaf"]["units"] = 8
    assert fails(b, key).code == "leaf_not_included"

    b = copy.deepcopy(good)
    b["mints"][0]["credit"] = {"units": 2, "index": 0, "inclusion": []}
    assert fails(b, key).code == "credit_not_included"

    b = copy.deepcopy(good)
    first_credit(b)["credit"] = None
    assert fails(b, key).code == "credit_missing"

    b = copy.deepcopy(good)
    b["checkpoint"] = b["checkpoint"].replace("\n18\n", "\n17\n")
    assert fails(b, key).code == "bad_signature"

    b = copy.deepcopy(good)
    b["tree_size"] = 17
    assert fails(b, key).code == "size_mismatch"

    b = copy.deepcopy(good)
    b["mints"][4]["leaf"]["units"] = 7.0
    assert fails(b, key).code == "bad_bundle"

    for bad in ("AB" * 32, "ab" * 31, "ab" * 31 + "a ", "xy" * 32):
        b = copy.deepcopy(good)
        b["mints"][6]["inclusion"][1] = bad
        f = fails(b, key)
        assert (f.code, f.params["where"]) == ("bad_bundle", "mints[6].inclusion[1]")

    b = copy.deepcopy(good)
    b["version"] = 2
    assert fails(b, key).code == "unsupported_version"


def test_a_wrong_key_or_another_plants_key_fails(log: Log) -> None:
    other = Key(log.key.name, Ed25519PrivateKey.from_private_bytes(bytes(32)))
    assert fails(log.bundle("ann"), other.vkey).code == "unsigned"
    assert fails(log.bundle("ann"), log.key.vkey[:-2] + "A=").code == "bad_key"
    elsewhere = build_log([EQUAL], plant="p2")
    assert fails(elsewhere.bundle("ann"), log.key.vkey).code == "unsigned"


def test_a_log_that_credits_wrongly_is_caught_even_when_signed(log: Log) -> None:
    lying = copy.deepcopy(log)
    credits = {"ann": 3, "bob": 2, "cé": 2}  # mint 1: 7 units over three equal backers: 2, 2, 2
    tree = BackerTree.credits(credits)
    lying.credits[0] = tree
    old = lying.leaves[0]
    lying.leaves[0] = mint_leaf(
        old["plant"],
        1,
        old["completed_at_us"],
        7,
        0,
        bytes.fromhex(old["register_root"]),
        old["register_count"],
        old["register_total"],
        tree.root,
        tree.count,
    )
    f = fails(lying.bundle("ann"), lying.key.vkey)
    assert (f.code, f.params) == ("credit_wrong", {"mwh_index": 1, "units": 3, "expected": 2})


def test_history_rewritten_after_a_checkpoint_fails_against_it(log: Log) -> None:
    earlier = log.checkpoint(10)
    other = [EQUAL] * 7 + [{"ann": 1, "bob": 2}] * 11  # rebuilt with another register
    rewritten = build_log(other, units=7)
    assert rewritten.key.vkey == log.key.vkey
    check_bundle(rewritten.bundle("ann"), log.key.vkey)  # fine on its own...
    f = fails(rewritten.bundle("ann"), log.key.vkey, earlier)  # ...not against what was seen
    assert (f.code, f.params) == ("inconsistent", {"previous_size": 10, "tree_size": 18})
    f = fails(rewritten.bundle("ann", since=10), log.key.vkey, earlier)
    assert f.code == "inconsistent"
    assert fails(log.bundle("ann"), log.key.vkey, log.checkpoint(18)[:-3] + "\n").code == "bad_note"
    shorter = build_log(REGISTERS[:5], units=7)
    assert fails(shorter.bundle("ann"), log.key.vkey, log.checkpoint(6)).code == "previous_newer"


def test_a_consistency_proof_in_the_bundle_is_checked(log: Log) -> None:
    b = log.bundle("ann", since=6)
    b["consistency"]["proof"][0] = "00" * 32
    assert fails(b, log.key.vkey).code == "bad_consistency"
    assert fails(b, log.key.vkey, log.checkpoint(6)).code == "inconsistent"
    check_bundle(log.bundle("ann", since=0), log.key.vkey)
    check_bundle(log.bundle("ann", since=18), log.key.vkey, log.checkpoint(18))


def test_stored_checkpoints_are_checked_against_the_key(log: Log) -> None:
    origin, size, root = check_checkpoint(log.checkpoint(5), log.key.vkey)
    assert (origin, size) == ("heliod/p1", 5)
    assert root == MerkleTree(mint_leaf_hashes(log.leaves[:5])).root()
    other = Key(log.key.name, Ed25519PrivateKey.from_private_bytes(bytes(32)))
    with pytest.raises(ValueError, match="no signature by the key heliod/p1"):
        check_checkpoint(log.checkpoint(5), other.vkey)
    with pytest.raises(ValueError, match="does not verify"):
        check_checkpoint(log.checkpoint(5).replace("\n5\n", "\n6\n"), log.key.vkey)
    elsewhere = Key("heliod/p2")
    text = checkpoint_text("heliod/p1", 1, bytes(32))
    with pytest.raises(ValueError, match="is for heliod/p1, not heliod/p2"):
        check_checkpoint(elsewhere.sign_note(text), elsewhere.vkey)


def test_language_choice() -> None:
    assert pick_language(None, {"LANG": "fr_FR.UTF-8"}) == "fr"
    assert pick_language(None, {"LC_ALL": "en_GB.UTF-8", "LANG": "fr_FR.UTF-8"}) == "en"
    assert pick_language(None, {"LC_MESSAGES": "fr_CA", "LANG": "C"}) == "fr"
    assert pick_language("en", {"LANG": "fr_FR"}) == "en"
    assert pick_language(None, {}) == "en"
    assert all(len(pair) == 2 and pair[0] != pair[1] for pair in MESSAGES.values())


def test_verify_py_imports_only_the_standard_library() -> None:
    tree = ast.parse(VERIFY_PY.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative import"
            names.add((node.module or "").split(".")[0])
    assert names <= sys.stdlib_module_names, names - sys.stdlib_module_names
    assert "heliod" not in VERIFY_PY.read_text().split('"""', 2)[2].split("import", 1)[0]


# --- as a backer runs it -------------------------------------------------------------


@pytest.fixture(scope="module")
def backer_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A virtual environment with no package, and a folder holding only verify.py."""
    root = tmp_path_factory.mktemp("backer")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    (root / "work").mkdir()
    (root / "work" / "verify.py").write_bytes(VERIFY_PY.read_bytes())
    return root / "venv" / "bin" / "python", root / "work"


def run(
    env: tuple[Path, Path], bundle: Any, key: str, *extra: str, lang: str = "en"
) -> subprocess.CompletedProcess[str]:
    python, work = env
    (work / "bundle.json").write_text(json.dumps(bundle, ensure_ascii=False))
    return subprocess.run(
        [str(python), "-I", "verify.py", "bundle.json", "--key", key, *extra],
        cwd=work,
        capture_output=True,
        text=True,
        env={"LANG": "fr_FR.UTF-8" if lang == "fr" else "C.UTF-8", "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )


def test_the_verifier_alone_prints_the_balance(backer_env: tuple[Path, Path], log: Log) -> None:
    (backer_env[1] / "old.txt").write_text(log.checkpoint(9))
    done = run(backer_env, log.bundle("dan", since=9), log.key.vkey, "--previous", "old.txt")
    assert done.returncode == 0, done.stderr
    assert f"balance {log.credited['dan']} units" in done.stdout
    assert "previous checkpoint of size 9 is a prefix" in done.stdout
    done = run(backer_env, log.bundle("dan"), log.key.vkey, lang="fr")
    assert done.returncode == 0, done.stderr
    assert f"solde {log.credited['dan']} unités" in done.stdout


CASES = {
    "credit_not_included": lambda b: first_credit(b)["credit"].__setitem__("units", 99),
    "register_not_included": lambda b: b["mints"][0]["register"].__setitem__("weight", "2"),
    "mint_count": lambda b: b["mints"].pop(),
    "leaf_not_included": lambda b: b["mints"][3]["inclusion"].reverse(),
}
WORDS = {
    "credit_not_included": (
        "is not in that mint's signed credits",
        "n'est pas dans les crédits signés",
    ),
    "register_not_included": (
        "is not in that mint's signed register",
        "n'est pas dans le registre signé",
    ),
    "mint_count": ("a mint is missing or added", "il en manque ou il y en a en trop"),
    "leaf_not_included": ("is not in the signed log", "n'est pas dans le journal signé"),
    "unsigned": ("carries no signature by the key", "ne porte aucune signature de la clé"),
    "inconsistent": ("the log was rewritten", "le journal a été réécrit"),
}


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("code", list(CASES))
def test_the_verifier_alone_names_an_edit(
    backer_env: tuple[Path, Path], log: Log, code: str, lang: str
) -> None:
    bundle = log.bundle("ann")
    CASES[code](bundle)
    done = run(backer_env, bundle, log.key.vkey, lang=lang)
    assert done.returncode == 1
    assert done.stdout == ""
    assert WORDS[code][lang == "fr"] in done.stderr
    assert done.stderr.startswith("ÉCHEC : " if lang == "fr" else "FAILED: ")


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_verifier_alone_refuses_a_wrong_key_and_a_rewritten_log(
    backer_env: tuple[Path, Path], log: Log, lang: str
) -> None:
    other = Key(log.key.name, Ed25519PrivateKey.from_private_bytes(bytes(32)))
    done = run(backer_env, log.bundle("ann"), other.vkey, lang=lang)
    assert done.returncode == 1
    assert WORDS["unsigned"][lang == "fr"] in done.stderr
    (backer_env[1] / "old.txt").write_text(log.checkpoint(12))
    rewritten = build_log([*REGISTERS[:11], EQUAL, *REGISTERS[12:]], units=7)
    done = run(
        backer_env, rewritten.bundle("ann"), log.key.vkey, "--previous", "old.txt", "--lang", lang
    )
    assert done.returncode == 1
    assert WORDS["inconsistent"][lang == "fr"] in done.stderr


def _old_pythons() -> list[str]:
    # Real interpreters only (a pyenv shim on PATH may point at nothing).
    found = [Path(f"/usr/bin/python3.{minor}") for minor in (8, 9)]
    found += Path.home().glob(".pyenv/versions/3.[89].*/bin/python3")
    return sorted(str(p) for p in found if p.is_file())


def test_the_verifier_runs_on_python_3_8_and_3_9(tmp_path: Path, log: Log) -> None:
    pythons = _old_pythons()
    if not pythons:
        pytest.skip("no Python 3.8 or 3.9 on this machine")
    (tmp_path / "verify.py").write_bytes(VERIFY_PY.read_bytes())
    (tmp_path / "bundle.json").write_text(json.dumps(log.bundle("ann")))
    for python in pythons:
        done = subprocess.run(
            [python, "-I", "verify.py", "bundle.json", "--key", log.key.vkey],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (python, done.stderr)
        assert f"balance {log.credited['ann']} units" in done.stdout


def test_the_verifier_alone_reports_an_unreadable_bundle(
    backer_env: tuple[Path, Path], log: Log
) -> None:
    python, work = backer_env
    (work / "broken.json").write_text('{"version": 1, "mints": [')
    done = subprocess.run(
        [str(python), "-I", "verify.py", "broken.json", "--key", log.key.vkey, "--lang", "fr"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("ÉCHEC : impossible de lire broken.json")
