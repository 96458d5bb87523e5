"""[[plants]] and [plants.reward]: what a plant is and how its MWh become tokens."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from heliod.daemon.config.devices import DEVICE_ID, Device
from heliod.daemon.config.errors import fail, show
from heliod.daemon.config.goals import ChallengeSection, ImpactSection, MilestoneSection
from heliod.daemon.config.types import Dec, Section, between, decimal_in, matches

PLANT_ID = r"[a-z0-9_-]{1,64}"
MAX_DECIMALS = 18
MAX_TOKENS_PER_MWH = 10**18
# tokens_per_mwh has at most 18 + 18 digits once validated: scaling it by 10^decimals
# fits this context, and would raise rather than round if it did not.
_EXACT = Context(prec=60, traps=[Inexact, Rounded, InvalidOperation])


def _start(value: Any) -> datetime | None:
    # TOML gives datetime (with or without offset) or date; strings are RFC 3339 / ISO 8601.
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise fail(f"not an RFC 3339 time: {show(value)} (e.g. 2016-12-01T00:00:00Z)")


class Reward(Section):
    """[plants.reward]: the token minted for each completed MWh."""

    symbol: Annotated[str, matches(r"[A-Za-z0-9]{1,16}")]
    decimals: Annotated[int, between(0, MAX_DECIMALS)] = 8
    tokens_per_mwh: Annotated[Dec, decimal_in(0, MAX_TOKENS_PER_MWH, MAX_DECIMALS, above=True)]
    # None: no start bound. Naive times are made aware in the plant's timezone by Plant.
    start: Annotated[datetime | None, BeforeValidator(_start)] = None

    @field_validator("tokens_per_mwh")
    @classmethod
    def _whole_units(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        decimals = info.data.get("decimals")
        units = value.scaleb(decimals, context=_EXACT) if decimals is not None else None
        if units is not None and units != units.to_integral_value(context=_EXACT):
            raise fail(
                f"{value:f} × 10^{decimals} is not a whole number of units "
                f"(at most {decimals} decimal places, or raise decimals)"
            )
        return value

    @property
    def units_per_mwh(self) -> int:
        """U = tokens_per_mwh × 10^decimals, the integer units minted per MWh."""
        return int(self.tokens_per_mwh.scaleb(self.decimals, context=_EXACT))


def _timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"unknown timezone {show(value)} (an IANA name such as Europe/Paris)") from None
    return value


def _aware(ts: datetime, tz: ZoneInfo) -> datetime:
    """A time written without an offset is in the plant's timezone (docs/configuration.md)."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=tz)


class Plant(Section):
    """One plant: its nameplate, its devices and its reward."""

    id: Annotated[str, matches(PLANT_ID)]
    name: str = Field(default="", validate_default=True)
    # Nameplate AC power: bounds a plausible energy step; 10 GW is beyond any plant.
    capacity_kw: Annotated[Dec, decimal_in(0, 10**7, 3, above=True)]
    timezone: Annotated[str, BeforeValidator(_timezone)] = "UTC"
    devices: list[Device] = Field(min_length=1)
    energy_devices: list[Annotated[str, matches(DEVICE_ID)]] = Field(min_length=1)
    max_overload: Annotated[Dec, decimal_in(1, 100, 3)] = Decimal("1.2")
    reward: Reward
    impact: ImpactSection | None = None  # absent: no impact figures
    milestones: list[MilestoneSection] | None = None  # absent: the default ones; []: none
    challenges: list[ChallengeSection] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        return value or str(info.data.get("id", ""))

    @field_validator("reward")
    @classmethod
    def _start_in_plant_timezone(cls, value: Reward, info: ValidationInfo) -> Reward:
        start, timezone = value.start, info.data.get("timezone")
        if start is None or (start.tzinfo is None and timezone is None):
            return value  # no start, or the timezone is already reported as wrong
        start = _aware(start, ZoneInfo(timezone or "UTC"))
        return value.model_copy(update={"start": start.astimezone(UTC)})

    @field_validator("challenges")
    @classmethod
    def _deadlines_in_plant_timezone(
        cls, value: list[ChallengeSection], info: ValidationInfo
    ) -> list[ChallengeSection]:
        timezone = info.data.get("timezone")
        if timezone is None:
            return value  # the timezone is already reported as wrong
        tz = ZoneInfo(timezone)
        return [
            c.model_copy(update={"deadline": _aware(c.deadline, tz).astimezone(UTC)}) for c in value
        ]

    @property
    def tz(self) -> ZoneInfo:
        """The plant's timezone (local days, times written without an offset)."""
        return ZoneInfo(self.timezone)

    def device(self, device_id: str) -> Device:
        """The plant's device with this id; KeyError if none."""
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(device_id)
