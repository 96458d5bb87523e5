"""Instants as integer microseconds since the Unix epoch (UTC), and RFC 3339 text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from heliod.rewards.numbers import brief

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


def to_us(ts: datetime) -> int:
    """Exact µs since the epoch of an aware datetime."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: a timezone is required")
    return (ts - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    """The aware UTC datetime of µs since the epoch."""
    return EPOCH + timedelta(microseconds=us)


def rfc3339(us: int) -> str:
    """RFC 3339 in UTC with `Z`, microseconds only when present."""
    ts = from_us(us)
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond:
        text += f".{ts.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str, default_tz: tzinfo) -> datetime:
    """RFC 3339 / ISO 8601 text; without an offset it is in `default_tz` (the plant's)."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty time")
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(raw)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=default_tz)
        return ts.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"not an RFC 3339 time: {brief(text)!r}") from None
