"""`readings reset-clock --device D [--yes]` (docs/accounting.md, "Clocks")."""

from __future__ import annotations

import argparse
import sys

from heliod.adapters.store import ledger_repo as repo
from heliod.adapters.store.clocks import DeviceClock, device_clock, record_clock_reset
from heliod.daemon.cli.commands.context import Context, UsageError, now_us
from heliod.daemon.cli.output import confirm, print_json
from heliod.rewards.clocks import ClockReset, is_ahead
from heliod.rewards.ledger import WH_PER_MWH_IN_MWH, LedgerState
from heliod.rewards.times import rfc3339
from heliod.rewards.units import mwh_to_wh

US_PER_DAY = 86_400_000_000


def _checked(clock: DeviceClock, now: int) -> int:
    """The device's newest stored time, or a usage error when its clock needs no reset."""
    newest = clock.newest_ts_us
    if newest is None or not is_ahead(newest, now):
        at = (
            "no stored reading"
            if newest is None
            else f"its newest stored reading is {rfc3339(newest)}"
        )
        raise UsageError(
            f"{clock.device}: {at}, not more than 5 minutes ahead of this gateway's clock "
            f"({rfc3339(now)}): its clock needs no reset"
        )
    return newest


def _ahead(newest: int, now: int) -> str:
    gap = newest - now
    if gap >= US_PER_DAY:
        return f"{gap // US_PER_DAY} days"
    return f"{gap // 60_000_000} minutes"


def _explain(
    clock: DeviceClock, newest: int, now: int, state: LedgerState, plant: str | None
) -> str:
    """What the reset does and what it would credit, as the operator reads it first."""
    lines = [
        f"{clock.device}: its newest stored reading is at {rfc3339(newest)}, "
        f"{_ahead(newest, now)} ahead of this gateway's clock ({rfc3339(now)}); "
        f"{clock.rejected} of its readings were rejected so far.",
        "Resetting its clock accounts it again from its next reading: its readings are "
        "then compared only with readings stored after this decision.",
    ]
    seen = clock.seen
    dev = state.devices.get(clock.device)
    f = dev.final if dev is not None else None
    if seen is None:
        lines.append(
            "No reading of it was rejected as not after the last one: the energy its counter "
            "carried since is checked against the time since this decision, and more goes "
            "to quarantine (heliod anomalies accept)."
        )
    else:
        lines.append(
            f"Its newest rejected reading: {mwh_to_wh(seen.value_mwh)} Wh at "
            f"{rfc3339(seen.at_us)}. The step from its last accounted reading up to that "
            "counter is credited as it is; what the counter adds after it must fit the "
            "plant's plausibility bound."
        )
        if f is not None and seen.value_mwh < f.value_mwh:
            lines.append(
                f"It is below the last accounted reading ({mwh_to_wh(f.value_mwh)} Wh), so it "
                "is not used: the step is checked against the time since this decision."
            )
        elif f is not None and plant is not None and seen.value_mwh > f.value_mwh:
            energy = state.plants.get(plant)
            e_now = energy.e_mwh if energy else 0
            done = energy.mwh_completed if energy else 0
            carried = seen.value_mwh - f.value_mwh
            after = (e_now + carried) // WH_PER_MWH_IN_MWH
            mwh = (
                "no MWh"
                if after <= done
                else f"MWh {done + 1}"
                if after == done + 1
                else f"MWh {done + 1}..{after}"
            )
            lines.append(
                f"That is about {mwh_to_wh(carried)} Wh for {plant}, completing {mwh} "
                "(as of the last accounted reading)."
            )
    return "\n".join(lines)


def reset_clock(ctx: Context, args: argparse.Namespace) -> int:
    """Show what a clock reset of the device does, ask, and record the decision."""
    device = args.device
    plant, _ = ctx.device(device)
    accounted = device in plant.energy_devices
    now = now_us()
    with ctx.store.read() as conn:
        clock = device_clock(conn, device)
        state = repo.load_state(conn)
    newest = _checked(clock, now)
    text = _explain(clock, newest, now, state, plant.id if accounted else None)
    print(text, file=sys.stderr if ctx.json else sys.stdout)
    if not confirm(f"Reset the clock of {device}?", args.yes, "reset"):
        print("not reset; nothing changed")
        return 1
    with ctx.store.write() as conn:
        _checked(device_clock(conn, device), now_us())  # another command may have reset it
        # What the operator was shown and confirmed, V included, is what is recorded.
        reset = record_clock_reset(conn, clock, now_us())
    if ctx.json:
        print_json(reset_item(reset))
    else:
        print(
            f"{device}: clock reset recorded (decision {reset.id}, after reading "
            f"{reset.position}); its next readings are stored and accounted"
        )
    return 0


def reset_item(reset: ClockReset) -> dict[str, object]:
    """The decision as `--json` prints it."""
    seen = reset.seen
    return {
        "id": reset.id,
        "device": reset.device,
        "position": reset.position,
        "decided_at": rfc3339(reset.decided_at_us),
        "seen": None
        if seen is None
        else {"value_wh": mwh_to_wh(seen.value_mwh), "at": rfc3339(seen.at_us)},
    }
