"""The whole configuration file as one validated, immutable value (docs/configuration.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator

from heliod.daemon.config.devices import Device
from heliod.daemon.config.errors import ConfigError
from heliod.daemon.config.plants import Plant
from heliod.daemon.config.sections import (
    LOG_KEY_NAME,
    PLATFORM_SECRET_ENV,
    ApiSection,
    DaemonSection,
    InfluxSection,
    LogSection,
    MqttSection,
    PlatformSection,
    StorageSection,
    blank,
    read_secret,
)
from heliod.daemon.config.types import Section, environment

# secret name -> (table, key of its file, environment variable that overrides the file)
SECRETS = {
    "mqtt.password": ("mqtt", "password_file", "HELIOD_MQTT_PASSWORD"),
    "influxdb.token": ("influxdb", "token_file", "HELIOD_INFLUXDB_TOKEN"),
    "platform.secret": ("platform", "secret_file", PLATFORM_SECRET_ENV),
}
# Secrets without which their table cannot work: heliod never signs with an empty key.
REQUIRED_SECRETS = frozenset({"platform.secret"})


class Config(Section):
    """A validated heliod.toml; build it with load_config() or validate_config()."""

    daemon: DaemonSection = Field(default_factory=dict, validate_default=True)
    storage: StorageSection = Field(default_factory=dict, validate_default=True)
    api: ApiSection = Field(default_factory=dict, validate_default=True)
    mqtt: MqttSection | None = None  # absent: no MQTT
    influxdb: InfluxSection | None = None  # absent: no export
    platform: PlatformSection | None = None  # absent: no push
    log: LogSection = Field(default_factory=dict, validate_default=True)  # always on
    plants: list[Plant] = Field(min_length=1)

    _path: Path = PrivateAttr(default=Path("heliod.toml"))
    _secret_env: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @field_validator("storage")
    @classmethod
    def _default_database(cls, value: StorageSection, info: ValidationInfo) -> StorageSection:
        daemon = info.data.get("daemon")
        if value.url or daemon is None:
            return value
        return value.model_copy(update={"url": f"sqlite:///{daemon.state_dir / 'heliod.db'}"})

    @field_validator("log")
    @classmethod
    def _default_key_file(cls, value: LogSection, info: ValidationInfo) -> LogSection:
        daemon = info.data.get("daemon")
        if value.signing_key_file is not None or daemon is None:
            return value
        # Like the *_file keys: a credential of that name (systemd's LoadCredential=) wins.
        credentials = environment(info).get("CREDENTIALS_DIRECTORY", "")
        given = Path(credentials, LOG_KEY_NAME) if credentials else None
        path = given if given is not None and given.exists() else daemon.state_dir / LOG_KEY_NAME
        return value.model_copy(update={"signing_key_file": path})

    @property
    def path(self) -> Path:
        """The absolute path of the file this configuration was read from."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """The file's folder: relative paths in the file are relative to it."""
        return self._path.parent

    def plant(self, plant_id: str) -> Plant:
        """The plant with this id; KeyError if none."""
        for plant in self.plants:
            if plant.id == plant_id:
                return plant
        raise KeyError(plant_id)

    def devices(self) -> Iterator[tuple[Plant, Device]]:
        """Every device of the file with its plant, in file order."""
        for plant in self.plants:
            for device in plant.devices:
                yield plant, device

    def device(self, device_id: str) -> tuple[Plant, Device]:
        """The device with this id and its plant; KeyError if none."""
        for plant, device in self.devices():
            if device.id == device_id:
                return plant, device
        raise KeyError(device_id)

    def energy_device_ids(self) -> frozenset[str]:
        """Ids of the devices whose energy_wh is accounted, over all plants."""
        return frozenset(d for plant in self.plants for d in plant.energy_devices)

    def secret(self, name: str) -> str | None:
        """mqtt.password, influxdb.token or platform.secret: env var, else its file, else None.

        Read on each call (validation only checks that platform.secret is there); one
        trailing newline of the file is dropped. A named file that cannot be read, or an
        empty or absent platform.secret while [platform] is set, raises ConfigError
        naming its key.
        """
        if name not in SECRETS:
            raise ValueError(f"unknown secret {name!r} (one of {', '.join(SECRETS)})")
        table, key, variable = SECRETS[name]
        section = getattr(self, table)
        if section is None:
            return None
        from_env = self._secret_env.get(variable)
        if from_env is not None and not blank(from_env.get_secret_value()):
            return from_env.get_secret_value()
        path: Path | None = getattr(section, key)
        text = None
        if path is not None:
            try:
                text = read_secret(path)
            except (OSError, ValueError) as e:
                reason = e.strerror if isinstance(e, OSError) else str(e)
                raise ConfigError([f"{table}.{key}: cannot read {path}: {reason}"]) from None
        if blank(text) and name in REQUIRED_SECRETS:
            where = "is not set" if path is None else f"{path} is empty"
            raise ConfigError([f"{table}.{key}: required: {where} (or set ${variable})"])
        return text

    def bind(self, path: Path, secret_env: dict[str, str]) -> None:
        """Attach the file's path and the secret environment variables (loader only)."""
        self._path = path
        self._secret_env = {k: SecretStr(v) for k, v in secret_env.items()}
