"""Value types of the configuration file: durations, exact decimals, ranges, paths, URLs."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationInfo

from heliod.daemon.config.errors import fail, show
from heliod.rewards.numbers import exact

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d))+")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
DURATION_HINT = "use 500ms, 10s, 5m, 1h, 400d"
MAX_DURATION = timedelta(days=36500)  # a century: longer is a typo, and would overflow clocks
_MAX_MS = MAX_DURATION // timedelta(milliseconds=1)


def parse_duration(text: str) -> timedelta:
    """`500ms`, `10s`, `5m`, `1h`, `400d` or a sum such as `1h30m` (at most 36500d)."""
    if not _DURATION.fullmatch(text):
        raise ValueError(f"not a duration: {show(text)} ({DURATION_HINT})")
    total_ms = 0
    for number, unit in _DURATION_PART.findall(text):
        digits = number.lstrip("0")
        if len(digits) > len(str(_MAX_MS)):  # int() of thousands of digits is refused anyway
            total_ms = _MAX_MS + 1
            break
        total_ms += int(digits or "0") * _UNIT_MS[unit]
    if total_ms > _MAX_MS:
        raise ValueError(f"must be at most {MAX_DURATION.days}d, got {show(text)}")
    return timedelta(milliseconds=total_ms)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):  # a default given in code
        return value
    if not isinstance(value, str):
        raise fail(f"not a duration: {show(value)} ({DURATION_HINT})")
    try:
        return parse_duration(value)
    except ValueError as e:
        raise fail(str(e)) from None


def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise fail("must be longer than 0s")
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
PositiveDuration = Annotated[
    timedelta, BeforeValidator(_duration), AfterValidator(_positive_duration)
]


def between(low: int, high: int) -> BeforeValidator:
    """An integer from low to high inclusive (TOML integers only; true/1.0 are refused)."""

    def check(value: Any) -> int:
        if type(value) is not int:
            raise fail(f"must be an integer, got {show(value)}")
        if not low <= value <= high:
            raise fail(f"must be {low}..{high}, got {value}")
        return value

    return BeforeValidator(check)


def one_of(literal: Any) -> BeforeValidator:
    """Membership in a typing.Literal, with a message that lists the choices."""
    choices = get_args(literal)

    def check(value: Any) -> Any:
        if type(value) is type(choices[0]) and value in choices:
            return value
        listed = ", ".join(str(c) for c in choices)
        raise fail(f"must be one of {listed}, got {show(value)}")

    return BeforeValidator(check)


def matches(pattern: str) -> BeforeValidator:
    """A string that matches the whole regular expression `pattern`."""
    compiled = re.compile(pattern)

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise fail(f"must be a string, got {show(value)}")
        if not compiled.fullmatch(value):
            raise fail(f"must match {pattern}, got {show(value)}")
        return value

    return BeforeValidator(check)


def _decimal(value: Any) -> Decimal:
    # TOML floats arrive as Decimal (tomllib parse_float=Decimal); strings keep their digits.
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise fail(f"must be a decimal number, got {show(value)}")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise fail(f"must be a decimal number, got {show(value)}") from None
    if not number.is_finite():
        raise fail(f"must be a finite number, got {show(value)}")
    return number


def decimal_in(
    low: Decimal | int, high: Decimal | int, places: int, *, above: bool = False
) -> AfterValidator:
    """A Decimal in [low, high] (> low when `above`) with at most `places` decimal places,
    taken exactly: an out-of-range or longer value is an error, never rounded."""

    def check(value: Decimal) -> Decimal:
        try:
            return exact(value, low=Decimal(low), high=Decimal(high), places=places, above=above)
        except ValueError as exc:
            raise fail(str(exc)) from None

    return AfterValidator(check)


Dec = Annotated[Decimal, BeforeValidator(_decimal)]


def base_dir(info: ValidationInfo) -> Path:
    """The configuration file's folder, from the validation context (else the cwd)."""
    context = info.context or {}
    return Path(context.get("base_dir") or Path.cwd())


def environment(info: ValidationInfo) -> Mapping[str, str]:
    """The environment given to load_config, from the validation context."""
    context = info.context or {}
    env: Mapping[str, str] = context.get("env", {})
    return env


def _file(value: Any, info: ValidationInfo) -> Path | None:
    # Like systemd's LoadCredential=: a bare name found in $CREDENTIALS_DIRECTORY wins;
    # only existence is checked here, the file is read when the daemon needs it.
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    credentials = environment(info).get("CREDENTIALS_DIRECTORY", "")
    if credentials and "/" not in value and os.path.exists(os.path.join(credentials, value)):
        return Path(credentials, value)
    return base_dir(info) / value


# A file named in the configuration; "" means none. Relative to the file's folder.
OptionalFile = Annotated[Path | None, BeforeValidator(_file)]


def check_url(value: Any, schemes: tuple[str, ...]) -> str:
    """A URL with one of `schemes`, a host, and no user:password (secrets live in files)."""
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    parts = parse_url(value, schemes)
    if parts.password is not None or parts.username is not None:
        raise fail("must not contain a user or password: use the dedicated keys")
    return value


def url_of(*schemes: str) -> BeforeValidator:
    """Validator for a URL key accepting `schemes` (see check_url)."""
    return BeforeValidator(lambda value: check_url(value, schemes))


def parse_url(value: str, schemes: tuple[str, ...]) -> SplitResult:
    """urlsplit with the checks every URL key needs; raises the user-facing error."""
    listed = " or ".join(f"{s}://" for s in schemes)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise fail(f"must be a {listed} URL naming a host, got {show(value)}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise fail(f"has an invalid port: {show(value)}") from None
    return parts


class Section(BaseModel):
    """Base of every table: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _non_empty(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"must be a string, got {show(value)}")
    if not value:
        raise fail("must not be empty")
    return value


NonEmptyStr = Annotated[str, BeforeValidator(_non_empty)]
