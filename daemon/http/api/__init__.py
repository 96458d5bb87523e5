"""The HTTP API (docs/platform.md): `create_app(store, config, health, metrics_registry)`."""

from heliod.daemon.http.api.app import create_app

__all__ = ["create_app"]
