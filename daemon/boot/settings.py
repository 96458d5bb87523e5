"""The one place where the configuration becomes the settings of heliod's parts.

Adapters and jobs take plain settings dataclasses, ports and values, and never see the
configuration model (docs/architecture.md, "Rooms"). `settings_of` reads a validated
`Config` once, at start, secrets included; everything after start works from its
result. The commands that build a single part (`account`, `read`, `readings import`)
use the same functions, so a command and the daemon can never disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from heliod.adapters.modbus.configured import settings_from_mapping
from heliod.adapters.modbus.settings import ModbusDeviceSettings
from heliod.adapters.signing import SigningKeyError, load_signing_key
from heliod.adapters.store.store import ExportLines
from heliod.daemon.config import Config, ConfigError, ModbusDevice, MqttDevice, Plant
from heliod.daemon.http.settings import ApiToken, HttpSettings
from heliod.daemon.jobs.ledger_log import LogSigner
from heliod.daemon.jobs.register_pull import SyncedPlant
from heliod.daemon.read.health import WatchedDevice
from heliod.daemon.read.plants import PlantView
from heliod.rewards.energy import Bound
from heliod.rewards.goals import PlantGoals
from heliod.rewards.impact import ImpactRules
from heliod.rewards.ledger import PlantBook, PlantRules
from heliod.rewards.times import to_us

# The optional parts' adapters import heavy libraries (paho, httpx):
# their settings types are named here only for the type checker.
if TYPE_CHECKING:
    from heliod.adapters.influx import InfluxSettings
    from heliod.adapters.mqtt import MqttSettings, PlantInfo
    from heliod.adapters.platform import PlatformSettings

log = logging.getLogger("heliod.settings")

_US = timedelta(microseconds=1)


def plant_book(plant: Plant) -> PlantBook:
    """What the accountant needs to know of one plant."""
    start = plant.reward.start
    return PlantBook(
        rules=PlantRules(
            id=plant.id,
            bound=Bound.of(plant.capacity_kw, plant.max_overload),
            energy_devices=frozenset(plant.energy_devices),
            start_us=None if start is None else to_us(start),
        ),
        units_per_mwh=plant.reward.units_per_mwh,
        symbol=plant.reward.symbol,
        decimals=plant.reward.decimals,
    )


def plant_books(config: Config) -> list[PlantBook]:
    """Every plant's book, in file order."""
    return [plant_book(p) for p in config.plants]


def plant_goals(plant: Plant) -> PlantGoals:
    """A plant's milestones (None: the default ones) and challenges (docs/milestones.md)."""
    milestones = None if plant.milestones is None else tuple(m.rule() for m in plant.milestones)
    return PlantGoals(plant.id, milestones, tuple(c.rule() for c in plant.challenges))


def all_goals(config: Config) -> list[PlantGoals]:
    """Every plant's goals, in file order."""
    return [plant_goals(p) for p in config.plants]


def modbus_device(device: ModbusDevice) -> ModbusDeviceSettings:
    """The Modbus adapter's settings of one configured device."""
    values = device.model_dump()
    if "unit_id" not in device.model_fields_set:
        del values["unit_id"]  # the profile's default unit id applies (e.g. SMA's 3)
    return settings_from_mapping(values)


def device_plants(config: Config) -> dict[str, str]:
    """Each configured device's plant: exported readings are tagged with it."""
    return {d.id: p.id for p, d in config.devices()}


def export_lines(config: Config) -> ExportLines | None:
    """How readings are rendered for the export when stored; None without [influxdb]."""
    if config.influxdb is None:
        return None
    from heliod.adapters.influx.lines import reading_lines, reading_prefix  # noqa: PLC0415

    prefixes = {d: reading_prefix(p, d) for d, p in device_plants(config).items()}
    return ExportLines(partial(reading_lines, prefixes=prefixes), config.influxdb.batch_size)


def intervals_us(config: Config, rate: float) -> dict[str, dict[str, int]]:
    """plant -> device -> the time between two readings, in clock µs (`rate`: clock speed)."""
    return {
        p.id: {d.id: int(d.expected_interval / _US * rate) for d in p.devices}
        for p in config.plants
    }


@dataclass(frozen=True)
class MqttParts:
    """The MQTT link: the subscriber's settings, and what the publisher announces."""

    link: MqttSettings
    device_ids: list[str]
    publish_prefix: str  # "": nothing is published
    plants: list[PlantInfo]
    ha_discovery: bool


@dataclass(frozen=True)
class ExportParts:
    """The InfluxDB export."""

    influx: InfluxSettings
    lines: ExportLines
    plant_of: dict[str, str]
    batch_size: int


@dataclass(frozen=True)
class PlatformParts:
    """The push to the platform and the share register pulled from it."""

    link: PlatformSettings
    retry_max_interval_s: float
    register_plants: list[SyncedPlant]  # empty without a backers_url


@dataclass(frozen=True)
class Settings:
    """Everything the running daemon needs from the configuration, read once at start."""

    books: list[PlantBook]
    goals: list[PlantGoals]
    impact: dict[str, ImpactRules]  # plant -> [plants.impact], for plants that have one
    watched: list[WatchedDevice]
    intervals_us: dict[str, dict[str, int]]
    modbus: list[ModbusDeviceSettings]
    retention_us: int
    listen: tuple[str, int]
    log_level: str
    http: HttpSettings
    mqtt: MqttParts | None = None
    export: ExportParts | None = None
    platform: PlatformParts | None = None
    secrets: list[str] = field(default_factory=list)
    log: LogSigner | None = None  # None only in tests that build settings by hand


def mqtt_parts(config: Config) -> MqttParts | None:
    """Broker settings with every MQTT device; None without an [mqtt] table."""
    section = config.mqtt
    if section is None:
        return None
    from heliod.adapters.mqtt import (  # noqa: PLC0415 - optional part
        DeviceSettings,
        FieldSpec,
        MqttSettings,
        PlantInfo,
    )

    devices = tuple(
        DeviceSettings(
            id=device.id,
            topic=device.topic,
            fields={k: FieldSpec(v.path, v.unit) for k, v in device.fields.items()},
            qos=device.qos,
            timestamp_path=device.timestamp.path if device.timestamp is not None else None,
            timezone=plant.timezone,
        )
        for plant, device in config.devices()
        if isinstance(device, MqttDevice)
    )
    link = MqttSettings(
        url=section.url,
        client_id=section.client_id,
        username=section.username,
        password=config.secret("mqtt.password") or "",
        ca_file=str(section.ca_file or ""),
        cert_file=str(section.cert_file or ""),
        key_file=str(section.key_file or ""),
        keepalive=int(section.keepalive.total_seconds()),
        max_packet_size=section.max_packet_size,
        devices=devices,
    )
    return MqttParts(
        link=link,
        device_ids=[d.id for d in devices],
        publish_prefix=section.publish_prefix,
        plants=[
            PlantInfo(
                p.id,
                p.name,
                p.reward.symbol,
                p.reward.tokens_per_mwh,
                co2_source=None if p.impact is None else p.impact.source,
            )
            for p in config.plants
        ],
        ha_discovery=section.ha_discovery,
    )


def export_parts(config: Config) -> ExportParts | None:
    """The export's settings; None without an [influxdb] table."""
    section = config.influxdb
    lines = export_lines(config)
    if section is None or lines is None:
        return None
    from heliod.adapters.influx import InfluxSettings  # noqa: PLC0415 - optional part

    return ExportParts(
        influx=InfluxSettings(
            url=section.url,
            org=section.org,
            bucket=section.bucket,
            token=config.secret("influxdb.token") or "",
            gzip=section.gzip,
        ),
        lines=lines,
        plant_of=device_plants(config),
        batch_size=section.batch_size,
    )


def platform_parts(config: Config) -> PlatformParts | None:
    """The [platform] table's settings; None when there is no push.

    Raises ConfigError when no secret can be read: heliod never signs with an empty key.
    """
    section = config.platform
    if section is None:
        return None
    secret = config.secret("platform.secret")
    if not secret:
        raise ConfigError(
            ["platform.secret_file: required to sign pushes (or set HELIOD_PLATFORM_SECRET)"]
        )
    from heliod.adapters.platform import PlatformSettings  # noqa: PLC0415 - optional part

    return PlatformParts(
        link=PlatformSettings(
            push_url=section.push_url,
            secret=secret,
            backers_url=section.backers_url,
            timeout_s=section.timeout.total_seconds(),
        ),
        retry_max_interval_s=section.retry_max_interval.total_seconds(),
        register_plants=[SyncedPlant(p.id, p.tz) for p in config.plants]
        if section.backers_url
        else [],
    )


def log_signer(config: Config, *, create: bool = True) -> LogSigner:
    """The key that signs every plant's log checkpoints (docs/verification.md): read from
    `[log] signing_key_file`, created there first when absent and `create` is set.

    Raises ConfigError naming `log.signing_key_file` when the key cannot be read, created
    or understood.
    """
    path = config.log.signing_key_file
    if path is None:  # Config fills in the default; only a hand-built model lacks it
        raise ConfigError(["log.signing_key_file: not set"])
    try:
        key = load_signing_key(path, create=create)
    except SigningKeyError as e:
        raise ConfigError([f"log.signing_key_file: {e}"]) from None
    return LogSigner(config.log.origin_prefix, key)


def secrets_of(config: Config) -> list[str]:
    """Every secret value the configuration can reach, for the log filter."""
    found = []
    for name in ("mqtt.password", "influxdb.token", "platform.secret"):
        try:
            value = config.secret(name)
        except ConfigError:  # an unreadable file is reported where it is used
            value = None
        if value:
            found.append(value)
    return found


def plant_views(
    config: Config, intervals: Mapping[str, Mapping[str, int]], log: LogSigner | None = None
) -> list[PlantView]:
    """What the API and the dashboard show of each plant (`log`: the key, else none)."""
    return [
        PlantView(
            id=p.id,
            name=p.name,
            timezone=p.timezone,
            capacity_kw=p.capacity_kw,
            symbol=p.reward.symbol,
            decimals=p.reward.decimals,
            devices=dict(intervals[p.id]),
            energy_devices=tuple(p.energy_devices),
            units_per_mwh=p.reward.units_per_mwh,
            impact=None if p.impact is None else p.impact.rules(),
            goals=plant_goals(p),
            log_origin=config.log.origin(p.id),
            log_vkey="" if log is None else log.vkey(p.id),
        )
        for p in config.plants
    ]


def http_settings(config: Config, rate: float = 1.0, log: LogSigner | None = None) -> HttpSettings:
    """The HTTP faces' settings: the plants they show (with `log`, else the key read from
    `[log]`, created when absent), the API tokens, `dashboard_public`."""
    return HttpSettings(
        plants=plant_views(config, intervals_us(config, rate), log or log_signer(config)),
        tokens=[ApiToken(t.name, t.sha256) for t in config.api.tokens],
        dashboard_public=config.api.dashboard_public,
    )


def settings_of(config: Config, rate: float = 1.0) -> Settings:
    """The daemon's settings; `rate` is the clock's speed (the demo runs faster)."""
    intervals = intervals_us(config, rate)
    log = log_signer(config)
    return Settings(
        books=plant_books(config),
        goals=all_goals(config),
        impact={p.id: p.impact.rules() for p in config.plants if p.impact is not None},
        watched=[
            WatchedDevice(device, interval)
            for devices in intervals.values()
            for device, interval in devices.items()
        ],
        intervals_us=intervals,
        modbus=[modbus_device(d) for _, d in config.devices() if isinstance(d, ModbusDevice)],
        retention_us=int(config.storage.raw_retention / _US),
        listen=(config.api.host, config.api.port),
        log_level=config.daemon.log_level,
        http=http_settings(config, rate, log),
        mqtt=mqtt_parts(config),
        export=export_parts(config),
        platform=platform_parts(config),
        secrets=secrets_of(config),
        log=log,
    )
