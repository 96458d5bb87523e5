"""InfluxDB 2 export (contract §7): line protocol from store rows, written with influxdb-client."""

from heliod.adapters.influx.lines import MINT, READING
from heliod.adapters.influx.source import Batch, MintSource, ReadingSource
from heliod.adapters.influx.writer import (
    InfluxAuthError,
    InfluxRefused,
    InfluxSettings,
    InfluxUnavailable,
    InfluxWriter,
)

__all__ = [
    "MINT",
    "READING",
    "Batch",
    "InfluxAuthError",
    "InfluxRefused",
    "InfluxSettings",
    "InfluxUnavailable",
    "InfluxWriter",
    "MintSource",
    "ReadingSource",
]
