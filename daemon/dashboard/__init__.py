"""The plant owners' dashboard (CONTRACT §8): the page, its static assets and data.json."""

from heliod.daemon.dashboard.router import dashboard_router

__all__ = ["dashboard_router"]
