"""Poll one Modbus device (SunSpec, a shipped profile or custom registers) into a Reading."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from heliod.adapters.clock import utc_now
from heliod.adapters.modbus.client import ConnectionPool, UnitReader
from heliod.adapters.modbus.profiles import load_profile
from heliod.adapters.modbus.registers import (
    counter_range_wh,
    plan_reads,
    read_spec,
    spans_of,
    split_block,
)
from heliod.adapters.modbus.settings import (
    CUSTOM_PROFILE,
    MAX_REGISTERS_PER_READ,
    SUNSPEC_PROFILE,
    ModbusDeviceSettings,
    RegisterSpec,
)
from heliod.adapters.modbus.sunspec import SunSpecSource
from heliod.rewards.readings import ENERGY, Reading

Clock = Callable[[], datetime]


class FieldSource(Protocol):
    """Reads a device's fields (base units) and its energy counter's range in Wh."""

    def read(self, reader: UnitReader) -> tuple[dict[str, Decimal], Decimal | None]:
        """One poll's fields; absent values are left out."""
        ...


class RegisterMapSource:
    """Fields from a fixed register map, read in as few requests as the device allows."""

    def __init__(
        self,
        registers: Sequence[RegisterSpec],
        max_read: int = MAX_REGISTERS_PER_READ,
        max_gap: int = 0,
    ) -> None:
        self.registers = tuple(registers)
        spans = [s for spec in self.registers for s in spans_of(spec)]
        self.blocks = [
            part
            for block in plan_reads(spans, max_read, max_gap)
            for part in split_block(block, max_read)
        ]

    def read(self, reader: UnitReader) -> tuple[dict[str, Decimal], Decimal | None]:
        """All blocks are read before anything is decoded: a failed read yields no field at all."""
        image: dict[tuple[str, int], int] = {}
        for block in self.blocks:
            words = reader.read_registers(block.kind, block.start, block.count)
            for i, word in enumerate(words):
                image[(block.kind, block.start + i)] = word
        fields: dict[str, Decimal] = {}
        counter_range: Decimal | None = None
        for spec in self.registers:
            value = read_spec(spec, image)
            if value is None:
                continue
            fields[spec.field] = value
            if spec.field == ENERGY:
                counter_range = counter_range_wh(spec, image)
        return fields, counter_range


class ModbusDevice:
    """One configured device: its read-only handle and the source that decodes its fields."""

    def __init__(
        self, settings: ModbusDeviceSettings, pool: ConnectionPool, clock: Clock = utc_now
    ) -> None:
        settings.validate()
        self.settings = settings
        self.clock = clock
        connect_delay_s = 0.0
        self.source: FieldSource
        if settings.profile == SUNSPEC_PROFILE:
            self.source = SunSpecSource()
        elif settings.profile == CUSTOM_PROFILE:
            self.source = RegisterMapSource(settings.registers)
        else:
            profile = load_profile(settings.profile)
            self.source = RegisterMapSource(profile.registers, profile.max_read, profile.max_gap)
            connect_delay_s = profile.connect_delay_s
        self.reader = pool.reader(settings, connect_delay_s)

    @property
    def id(self) -> str:
        """The device id from the configuration."""
        return self.settings.id

    def poll(self) -> Reading:
        """Read the device once; RetryableError or PermanentError, never a partial reading."""
        fields, counter_range = self.source.read(self.reader)
        if ENERGY not in fields:
            counter_range = None
        return Reading(self.settings.id, self.clock(), fields, counter_range)


def read_device(settings: ModbusDeviceSettings, clock: Clock = utc_now) -> Reading:
    """Poll one configured device once on a fresh connection (the `heliod read` command)."""
    pool = ConnectionPool()
    try:
        return ModbusDevice(settings, pool, clock).poll()
    finally:
        pool.close()
