"""The plant owners' dashboard (docs/dashboard.md): the page, its static assets and data.json."""

from heliod.daemon.http.dashboard.router import dashboard_router

__all__ = ["dashboard_router"]
