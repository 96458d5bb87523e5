"""The dashboard's routes: GET / (the page), /dashboard/data.json and /dashboard/static/…."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from heliod.adapters.store import Store
from heliod.daemon.config import Config
from heliod.daemon.dashboard.auth import bearer_auth
from heliod.daemon.dashboard.data import HealthProvider, dashboard_data

STATIC = Path(__file__).parent / "static"
# Everything the page loads comes from here: no CDN, the gateway may have no internet (§8).
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", "": "text/plain"}


def _system_clock_us() -> int:
    return time.time_ns() // 1000


def dashboard_router(
    store: Store,
    config: Config,
    auth_dependency: Callable[..., Any] | None,
    health_provider: HealthProvider | None,
    *,
    clock_us: Callable[[], int] = _system_clock_us,
) -> APIRouter:
    """The dashboard: public when `api.dashboard_public`, else data.json needs a bearer token.

    `auth_dependency` is the API's token dependency (None: the dashboard's own check of
    `api.tokens`); `health_provider` returns the /healthz body, for device health.
    """
    router = APIRouter(include_in_schema=False)
    guards = []
    if not config.api.dashboard_public:
        guards.append(Depends(auth_dependency or bearer_auth(config.api.tokens)))

    # The page holds no data; it only learns whether to ask for a token before data.json.
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    html = html.replace("{{dashboard_public}}", str(config.api.dashboard_public).lower())

    @router.get("/")
    def page() -> HTMLResponse:
        return HTMLResponse(html, headers={**_HEADERS, "Cache-Control": "no-cache"})

    @router.get("/dashboard/data.json", dependencies=guards)
    async def data() -> JSONResponse:
        body = await run_in_threadpool(dashboard_data, store, config, clock_us(), health_provider)
        return JSONResponse(body, headers={**_HEADERS, "Cache-Control": "no-store"})

    @router.get("/dashboard/static/{name:path}")
    def static(name: str) -> FileResponse:
        path = (STATIC / name).resolve()
        if not path.is_relative_to(STATIC.resolve()) or not path.is_file():
            raise HTTPException(404, "not found")
        return FileResponse(
            path,
            media_type=_TYPES.get(path.suffix, "application/octet-stream"),
            headers={**_HEADERS, "Cache-Control": "no-cache"},
        )

    return router
