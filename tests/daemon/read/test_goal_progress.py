"""Progress toward a milestone or a challenge is rounded down (docs/milestones.md): the
faces never show 100 % (or a full bar) before the goal is reached."""

from __future__ import annotations

from decimal import Decimal

import pytest

from heliod.daemon.read.goals import challenge_progress, next_milestone
from heliod.daemon.read.plants import PlantView
from heliod.rewards.goals import Milestone, PlantGoals

MWH = 10**9  # 1 MWh in mWh

PLANT = PlantView(
    id="p",
    name="P",
    timezone="UTC",
    capacity_kw=Decimal(100),
    symbol="SLR",
    decimals=0,
    devices={},
    energy_devices=(),
    goals=PlantGoals("p", (Milestone(1, "1 MWh"), Milestone(3, "3 MWh"))),
)


@pytest.mark.parametrize(
    ("e_mwh", "completed", "shown"),
    [
        pytest.param(MWH - 1, 0, "0.9999", id="one mWh short of 1 MWh"),
        pytest.param(MWH * 99_995 // 100_000, 0, "0.9999", id="half way between two places"),
        pytest.param(MWH * 2 // 3, 0, "0.6666", id="two thirds"),
        pytest.param(MWH, 1, "0.3333", id="1 MWh reached, toward 3"),
        pytest.param(3 * MWH - 1, 2, "0.9999", id="one mWh short of 3 MWh"),
    ],
)
def test_next_milestone_progress_is_rounded_down(e_mwh: int, completed: int, shown: str) -> None:
    got = next_milestone(PLANT, e_mwh, completed)
    assert got is not None
    assert got["progress"] == Decimal(shown)


@pytest.mark.parametrize(
    ("completed", "goal", "shown"),
    [
        pytest.param(19_999, 20_000, "0.9999", id="one MWh short, half way between places"),
        pytest.param(99_999, 100_000, "0.9999", id="one MWh short of 100,000"),
        pytest.param(2, 3, "0.6666", id="two thirds"),
        pytest.param(3, 3, "1", id="reached"),
        pytest.param(7, 3, "1", id="past the goal: at most 1"),
    ],
)
def test_challenge_progress_is_rounded_down(completed: int, goal: int, shown: str) -> None:
    assert challenge_progress(completed, goal) == Decimal(shown)
