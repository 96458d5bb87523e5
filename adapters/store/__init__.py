"""The local store (SQLAlchemy 2.0): readings, anomalies, share register, mints, credits."""

from heliod.adapters.store.engine import StoreError
from heliod.adapters.store.store import IngestResult, Store

__all__ = ["IngestResult", "Store", "StoreError"]
