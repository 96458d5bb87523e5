"""[plants.impact], [[plants.milestones]], [[plants.challenges]] through the real loader."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from heliod.rewards.goals import Challenge, Milestone
from heliod.rewards.impact import ImpactRules

from .test_config import BASE, EXAMPLE, load, problems

# Tables appended after BASE's device belong to its plant (TOML: the last [[plants]]).
GOALS = """
[plants.impact]
co2_g_per_kwh = 56.5
source = "ADEME Base Carbone, mix moyen 2022"
household_kwh_per_year = "4700"

[[plants.milestones]]
mwh = 100
title = "Les 100 premiers MWh"

[[plants.milestones]]
mwh = 1000

[[plants.challenges]]
id = "trees-2027"
title = "1 GWh before 2027: the town plants 100 trees"
goal_mwh = 1000
deadline = 2026-12-31T23:59:59
sponsor = "Ville de Brassemonte"

[[plants.challenges]]
id = "school"
title = "A school roof"
goal_mwh = 50
deadline = "2026-06-30T12:00:00+02:00"
sponsor = "Région"
"""
PARIS = 'timezone = "Europe/Paris"\n'


def with_tz(text: str) -> str:
    """BASE with the plant in Europe/Paris."""
    return text.replace("capacity_kw = 100\n", "capacity_kw = 100\n" + PARIS, 1)


def test_goal_tables_load_as_exact_values(tmp_path: Path) -> None:
    plant = load(tmp_path, with_tz(BASE + GOALS)).plants[0]
    assert plant.impact is not None
    assert plant.impact.rules() == ImpactRules(
        Decimal("56.5"), "ADEME Base Carbone, mix moyen 2022", Decimal("4700")
    )
    assert plant.milestones is not None
    assert [m.rule() for m in plant.milestones] == [
        Milestone(100, "Les 100 premiers MWh"),
        Milestone(1000, "1 GWh"),  # default title
    ]
    trees, school = plant.challenges
    # no offset: the plant's timezone (CET in December); an offset is kept
    assert trees.deadline == datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)
    assert school.deadline == datetime(2026, 6, 30, 10, 0, tzinfo=UTC)
    assert school.rule() == Challenge(
        "school", "A school roof", 50, 1_782_813_600_000_000, "Région"
    )


def test_absent_tables_mean_no_impact_default_milestones_no_challenges(tmp_path: Path) -> None:
    plant = load(tmp_path, BASE).plants[0]
    assert (plant.impact, plant.milestones, plant.challenges) == (None, None, [])
    text = BASE.replace("capacity_kw = 100\n", "capacity_kw = 100\nmilestones = []\n", 1)
    assert load(tmp_path, text).plants[0].milestones == []


@pytest.mark.parametrize(
    ("table", "line"),
    [
        (
            'co2_g_per_kwh = "0"',
            "plants[0].impact.co2_g_per_kwh: must be > 0 and ≤ 2000 with at most 6 decimal places, got 0",
        ),
        (
            'co2_g_per_kwh = "-3"',
            "plants[0].impact.co2_g_per_kwh: must be > 0 and ≤ 2000 with at most 6 decimal places, got -3",
        ),
        (
            'co2_g_per_kwh = "2000.5"',
            "plants[0].impact.co2_g_per_kwh: must be > 0 and ≤ 2000 with at most 6 decimal places, got 2000.5",
        ),
        (
            'co2_g_per_kwh = "56.1234567"',
            "plants[0].impact.co2_g_per_kwh: has more than 6 decimal places, got 56.1234567 "
            "(refused, never rounded)",
        ),
        (
            'co2_g_per_kwh = "about 56"',
            'plants[0].impact.co2_g_per_kwh: must be a decimal number, got "about 56"',
        ),
        ("co2_g_per_kwh = nan", "plants[0].impact.co2_g_per_kwh: must be a finite number, got NaN"),
        (
            'household_kwh_per_year = "0"',
            "plants[0].impact.household_kwh_per_year: must be > 0 and ≤ 100000 with at most 3 decimal places, got 0",
        ),
        ('source = ""', "plants[0].impact.source: must not be empty"),
        (
            'source = "' + "x" * 201 + '"',
            "plants[0].impact.source: must be at most 200 characters, got 201",
        ),
        ("factor = 1", "plants[0].impact.factor: unknown key"),
    ],
)
def test_impact_mistakes(tmp_path: Path, table: str, line: str) -> None:
    base = {"co2_g_per_kwh": '"56"', "source": '"s"'}
    key = table.split(" = ", maxsplit=1)[0]
    base.pop(key, None)
    text = "\n[plants.impact]\n" + "".join(f"{k} = {v}\n" for k, v in base.items()) + table + "\n"
    assert problems(tmp_path, BASE + text) == [line]


def test_impact_needs_factor_and_source(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "\n[plants.impact]\n") == [
        "plants[0].impact.co2_g_per_kwh: required",
        "plants[0].impact.source: required",
    ]


def challenge(**changes: str) -> str:
    """One [[plants.challenges]] table with `changes` to its valid keys (raw TOML values)."""
    keys = {
        "id": '"c1"',
        "title": '"t"',
        "goal_mwh": "10",
        "deadline": '"2027-01-01T00:00:00Z"',
        "sponsor": '"s"',
    }
    keys.update(changes)
    return "\n[[plants.challenges]]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items() if v)


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        (
            {"id": '"Trees 2027"'},
            'plants[0].challenges[0].id: must match [a-z0-9_-]{1,64}, got "Trees 2027"',
        ),
        ({"goal_mwh": "0"}, "plants[0].challenges[0].goal_mwh: must be 1..1000000000, got 0"),
        ({"goal_mwh": "1.5"}, "plants[0].challenges[0].goal_mwh: must be an integer, got 1.5"),
        ({"goal_mwh": '"10"'}, 'plants[0].challenges[0].goal_mwh: must be an integer, got "10"'),
        (
            {"deadline": "2026-12-31"},
            "plants[0].challenges[0].deadline: needs a time of day, got the date 2026-12-31 "
            "(e.g. 2026-12-31T23:59:59 for the end of that day)",
        ),
        (
            {"deadline": '"2026-12-31"'},
            'plants[0].challenges[0].deadline: not an RFC 3339 time: "2026-12-31" '
            "(e.g. 2026-12-31T23:59:59)",
        ),
        (
            {"deadline": '"end of 2026"'},
            'plants[0].challenges[0].deadline: not an RFC 3339 time: "end of 2026" '
            "(e.g. 2026-12-31T23:59:59)",
        ),
        ({"sponsor": ""}, "plants[0].challenges[0].sponsor: required"),
        ({"sponsor": '""'}, "plants[0].challenges[0].sponsor: must not be empty"),
        ({"title": ""}, "plants[0].challenges[0].title: required"),
    ],
)
def test_challenge_mistakes(tmp_path: Path, changes: dict[str, str], line: str) -> None:
    assert problems(tmp_path, BASE + challenge(**changes)) == [line]


def test_duplicate_goals_within_a_plant(tmp_path: Path) -> None:
    text = BASE + challenge() + challenge(goal_mwh="20") + "\n[[plants.milestones]]\nmwh = 5\n"
    text += "\n[[plants.milestones]]\nmwh = 5\n"
    assert problems(tmp_path, text) == [  # in the file's order
        'plants[0].challenges[1].id: duplicate challenge "c1" (also challenges[0])',
        "plants[0].milestones[1].mwh: duplicate milestone 5 (also milestones[0])",
    ]


@pytest.mark.parametrize(
    ("table", "line"),
    [
        ("mwh = 0", "plants[0].milestones[0].mwh: must be 1..1000000000, got 0"),
        ("mwh = 1000000001", "plants[0].milestones[0].mwh: must be 1..1000000000, got 1000000001"),
        ("mwh = true", "plants[0].milestones[0].mwh: must be an integer, got true"),
    ],
)
def test_milestone_mistakes(tmp_path: Path, table: str, line: str) -> None:
    assert problems(tmp_path, BASE + f"\n[[plants.milestones]]\n{table}\n") == [line]


def test_milestone_title_must_be_text(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "\n[[plants.milestones]]\ntitle = 3\n") == [
        "plants[0].milestones[0].title: must be a string, got 3",
        "plants[0].milestones[0].mwh: required",  # absent keys come last
    ]


def test_example_documents_the_goal_tables_and_their_sources() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for table in ("[plants.impact]", "[[plants.milestones]]", "[[plants.challenges]]"):
        assert f"# {table}" in text
    # where factors come from, without a factor chosen for the user
    assert "ADEME Base Carbone" in text
    assert "national greenhouse-gas inventory" in text
    assert re.search(r"co2_g_per_kwh = \"<", text)
