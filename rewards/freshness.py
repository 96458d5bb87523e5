"""The one freshness rule: a device is stale after 3 of its intervals without a reading.

/healthz, the metrics, the dashboard, the Modbus poller and the plant's power on MQTT
all judge a device by this rule (docs/operations.md, "Health"), so a device never shows
"ok" in one place and "stale" in another.
"""

from __future__ import annotations

from typing import Literal

# ok: readings arrive; stale: none for 3 intervals; error: the link or the device fails;
# clock: its newest reading is ahead of the gateway's clock (docs/accounting.md, "Clocks").
DeviceState = Literal["ok", "stale", "error", "clock"]
DEVICE_STATES: tuple[DeviceState, ...] = ("ok", "stale", "error", "clock")
STALE_INTERVALS = 3


def is_stale(since_us: int, now_us: int, interval_us: int) -> bool:
    """True once `now_us` is 3 intervals or more after `since_us` (the last reading, or start)."""
    return now_us - since_us >= STALE_INTERVALS * interval_us
