"""What every command gets: the validated configuration, the store, the clock, the output mode."""

from __future__ import annotations

from heliod.adapters.clock import system_now_us as now_us
from heliod.adapters.store import Store
from heliod.daemon.config import Config, Device, Plant

__all__ = ["Context", "Failure", "UsageError", "now_us"]


class UsageError(Exception):
    """A command was asked something that cannot be done as asked (exit code 2)."""


class Failure(Exception):
    """The command ran and found a failure (exit code 1)."""


class Context:
    """Shared state of one command invocation: its configuration, store and output mode."""

    def __init__(self, config: Config | None = None, json: bool = False) -> None:
        self._config = config
        self.json = json
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        """The validated configuration (only commands that read one ask for it)."""
        if self._config is None:
            raise UsageError("this command reads no configuration file")
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        self._config = config

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        if self._store is None:
            self._store = Store.open(self.config.storage.url)
        return self._store

    def close(self) -> None:
        """Release the store."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def plant(self, plant_id: str) -> Plant:
        """The configured plant, or a usage error naming the known ones."""
        for plant in self.config.plants:
            if plant.id == plant_id:
                return plant
        known = ", ".join(p.id for p in self.config.plants)
        raise UsageError(f"unknown plant {plant_id!r} (configured: {known})")

    def device(self, device_id: str) -> tuple[Plant, Device]:
        """The configured device and its plant, or a usage error naming the known ones."""
        try:
            return self.config.device(device_id)
        except KeyError:
            known = ", ".join(d.id for _, d in self.config.devices())
            raise UsageError(f"unknown device {device_id!r} (configured: {known})") from None
