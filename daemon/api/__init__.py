"""The HTTP API of CONTRACT §6: `create_app(store, config, health_provider, metrics_registry)`."""

from heliod.daemon.api.app import HealthProvider, create_app, health_body
from heliod.daemon.api.auth import bearer_auth, matching_name

__all__ = ["HealthProvider", "bearer_auth", "create_app", "health_body", "matching_name"]
