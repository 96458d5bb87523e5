"""The dashboard's routes: GET / (the page), /dashboard/data.json and /dashboard/static/…."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from heliod.adapters.clock import system_now_us
from heliod.adapters.store import Store
from heliod.daemon.http.dashboard.page import language, render
from heliod.daemon.http.settings import HttpSettings
from heliod.daemon.read.dashboard import dashboard_data

log = logging.getLogger("heliod.http")

STATIC = Path(__file__).parent / "static"
# Everything the page loads comes from here: no CDN, the gateway may have no internet.
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


def dashboard_router(
    store: Store,
    settings: HttpSettings,
    auth_dependency: Callable[..., Any],
    health_provider: Callable[[], Mapping[str, Any]] | None,
    *,
    clock_us: Callable[[], int] = system_now_us,
) -> APIRouter:
    """The dashboard: public when `api.dashboard_public`, else data.json needs a bearer token.

    `auth_dependency` is the one bearer check (daemon/http/auth.py); `health_provider`
    returns the /healthz body, for device health.
    """
    router = APIRouter(include_in_schema=False)
    guards = []
    if not settings.dashboard_public:
        guards.append(Depends(auth_dependency))

    template = (STATIC / "index.html").read_text(encoding="utf-8")
    names = [p.name for p in settings.plants]

    def read_data() -> dict[str, Any]:
        return dashboard_data(store, settings.plants, clock_us(), health_provider)

    def try_read_data() -> dict[str, Any] | None:
        """The data, or None when the store cannot be read (logged): the page then shows
        its loading state and keeps asking data.json, so it never breaks."""
        try:
            return read_data()
        except Exception as exc:  # a store that cannot be read must not break the page
            log.warning("dashboard: cannot read the store: %s", _one_line(exc))
            return None

    @router.get("/")
    async def page(request: Request) -> HTMLResponse:
        # A public page carries its first data, so its first paint shows the plant; a
        # private one holds no data (it asks for a token) and shows a loading state.
        data = await run_in_threadpool(try_read_data) if settings.dashboard_public else None
        body = render(
            template,
            public=settings.dashboard_public,
            lang=language(request.headers.get("accept-language")),
            names=names,
            data=data,
        )
        headers = {**_HEADERS, "Cache-Control": "no-store", "Vary": "Accept-Language"}
        return HTMLResponse(body, headers=headers)

    @router.get("/dashboard/data.json", dependencies=guards)
    async def data() -> JSONResponse:
        body = await run_in_threadpool(try_read_data)
        headers = {**_HEADERS, "Cache-Control": "no-store"}
        if body is None:
            error = {"error": "the store cannot be read now; see the daemon's log"}
            return JSONResponse(error, status_code=503, headers={**headers, "Retry-After": "30"})
        return JSONResponse(body, headers=headers)

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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
