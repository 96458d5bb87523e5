"""The local store (SQLAlchemy 2.0): readings, anomalies, share register, mints, credits."""

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from heliod.adapters.store.engine import StoreError
from heliod.adapters.store.store import IngestResult, Store

# The connection type and the database's operational error, for the code above the store
# that holds a transaction or reports a failed one without using SQLAlchemy itself.
__all__ = ["Connection", "IngestResult", "OperationalError", "Store", "StoreError"]
