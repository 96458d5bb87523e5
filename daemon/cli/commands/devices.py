"""`heliod scan` (SunSpec discovery on any device) and `heliod read DEVICE` (one poll)."""

from __future__ import annotations

import argparse

from heliod.adapters.clock import utc_now
from heliod.adapters.errors import AdapterError
from heliod.adapters.modbus import read_device
from heliod.adapters.modbus import scan as scan_device
from heliod.daemon.boot.settings import modbus_device
from heliod.daemon.cli.commands.context import Context, Failure, UsageError
from heliod.daemon.cli.output import print_json, print_table
from heliod.daemon.config import ModbusDevice
from heliod.rewards.times import rfc3339, to_us


def scan(ctx: Context, args: argparse.Namespace) -> int:
    """Find the SunSpec models at --host (or --serial-port) and print their current values."""
    if bool(args.host) == bool(args.serial_port):
        raise UsageError("give exactly one of --host or --serial-port")
    try:
        result = scan_device(
            args.host or "",
            args.port,
            args.unit,
            args.serial_port,
            baudrate=args.baudrate,
            timeout_s=args.timeout,
        )
    except AdapterError as exc:
        raise Failure(f"scan of {args.host or args.serial_port}: {exc}") from None
    if ctx.json:
        print_json(result.to_dict())
    else:
        print(result.to_text())
    return 0


def read(ctx: Context, args: argparse.Namespace) -> int:
    """Poll one configured Modbus device once, as the daemon would, and print its fields."""
    device_id = args.device
    _, device = ctx.device(device_id)
    if not isinstance(device, ModbusDevice):
        raise UsageError(f"{device_id} is an MQTT device: its readings arrive, they are not polled")
    try:
        reading = read_device(modbus_device(device), utc_now)
    except AdapterError as exc:
        raise Failure(f"{device_id}: {exc}") from None
    if ctx.json:
        print_json(
            {
                "device": reading.device,
                "at": rfc3339(to_us(reading.ts)),
                "fields": dict(sorted(reading.fields.items())),
                "counter_range_wh": reading.counter_range_wh,
            }
        )
        return 0
    print(f"{reading.device} at {rfc3339(to_us(reading.ts))}")
    print_table(("field", "value"), sorted(reading.fields.items()))
    return 0
