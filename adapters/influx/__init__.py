"""InfluxDB 2 export (docs/export.md): line protocol POSTed to /api/v2/write.

The batches come from the store (adapters/store/export_source.py); lines.py renders them."""

from heliod.adapters.influx.lines import MINT, READING
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
    "InfluxAuthError",
    "InfluxRefused",
    "InfluxSettings",
    "InfluxUnavailable",
    "InfluxWriter",
]
