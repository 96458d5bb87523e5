"""[plants.impact], [[plants.milestones]] and [[plants.challenges]] (docs/milestones.md)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from heliod.daemon.config.errors import fail, show
from heliod.daemon.config.types import Dec, NonEmptyStr, Section, between, decimal_in, matches
from heliod.rewards.goals import Challenge, Milestone, default_title
from heliod.rewards.impact import ImpactRules
from heliod.rewards.times import to_us

GOAL_ID = r"[a-z0-9_-]{1,64}"
MAX_MWH = 10**9  # 10^15 Wh, the largest counter value heliod accepts (docs/accounting.md)
MAX_TEXT = 200  # characters of a title, sponsor or source: a line on the dashboard
# Emission factors of electricity, g CO2e/kWh: from 0 to lignite's ~1,200 with room.
MAX_CO2_G_PER_KWH = Decimal(2000)
MAX_HOUSEHOLD_KWH = Decimal(100_000)


def _short(value: str) -> str:
    if len(value) > MAX_TEXT:
        raise fail(f"must be at most {MAX_TEXT} characters, got {len(value)}")
    return value


Text = Annotated[NonEmptyStr, AfterValidator(_short)]


class ImpactSection(Section):
    """[plants.impact]: the emission factor, where it comes from, a household's use."""

    co2_g_per_kwh: Annotated[Dec, decimal_in(0, MAX_CO2_G_PER_KWH, 6, above=True)]
    source: Text
    household_kwh_per_year: (
        Annotated[Dec, decimal_in(0, MAX_HOUSEHOLD_KWH, 3, above=True)] | None
    ) = None

    def rules(self) -> ImpactRules:
        """The domain's view of this table."""
        return ImpactRules(self.co2_g_per_kwh, self.source, self.household_kwh_per_year)


class MilestoneSection(Section):
    """One [[plants.milestones]]: reached by the plant's mint number `mwh`."""

    mwh: Annotated[int, between(1, MAX_MWH)]
    title: Annotated[str, AfterValidator(_short)] = Field(default="", validate_default=True)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str, info: ValidationInfo) -> str:
        mwh = info.data.get("mwh")
        return value or (default_title(mwh) if mwh is not None else "")

    def rule(self) -> Milestone:
        """The domain's view of this milestone."""
        return Milestone(self.mwh, self.title)


def _deadline(value: Any) -> datetime:
    # TOML gives a datetime (with or without offset); a bare date is refused: would it be
    # the day's first second or its last?
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        raise fail(
            f"needs a time of day, got the date {show(value)} "
            f"(e.g. {value.isoformat()}T23:59:59 for the end of that day)"
        )
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if "T" in value.upper() or " " in value.strip():
                return parsed
    raise fail(f"not an RFC 3339 time: {show(value)} (e.g. 2026-12-31T23:59:59)")


class ChallengeSection(Section):
    """One [[plants.challenges]]: "if we reach goal_mwh by deadline, sponsor does title"."""

    id: Annotated[str, matches(GOAL_ID)]
    title: Text
    goal_mwh: Annotated[int, between(1, MAX_MWH)]
    # Naive times are made aware in the plant's timezone by Plant.
    deadline: Annotated[datetime, BeforeValidator(_deadline)]
    sponsor: Text

    def rule(self) -> Challenge:
        """The domain's view of this challenge (the deadline is aware once loaded)."""
        return Challenge(self.id, self.title, self.goal_mwh, to_us(self.deadline), self.sponsor)
