"""The HTTP face of the daemon (CONTRACT §6): `create_app` builds it; nothing runs at import.

Every route only reads: the API cannot change the ledger. `/api/...` needs a bearer
token; `/healthz` and `/metrics` do not, and the dashboard follows `dashboard_public`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from heliod.adapters.store import Store
from heliod.adapters.store import schema as t
from heliod.daemon.api.auth import bearer_auth
from heliod.daemon.api.ledger import ledger_router
from heliod.daemon.api.models import Error, HealthOut
from heliod.daemon.api.plants import plants_router
from heliod.daemon.api.responses import NO_STORE, ExactJSON, install_error_handlers
from heliod.daemon.config import Config
from heliod.daemon.dashboard import dashboard_router

log = logging.getLogger("heliod.api")

API_PREFIX = "/api/v1"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
DEVICE_STATES = ("ok", "stale", "error")


class HealthProvider(Protocol):
    """Returns {"devices": {ID: {"state", "last_reading_at"}}, "sync": {"pending",
    "rejected"}, "export": {"pending"}}; may raise when the store cannot be read."""

    def __call__(self) -> Mapping[str, Any]:
        """The current device health and backlogs."""
        ...


def _system_clock_us() -> int:
    return time.time_ns() // 1000


def health_body(store: Store, provider: HealthProvider) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of GET /healthz: 503 only when the store cannot be read."""
    try:
        with store.read() as conn:
            conn.execute(select(t.accountant.c.id).limit(1)).all()
        report = provider()
    except Exception as exc:
        log.warning("healthz: the store cannot be read: %s", exc)
        return 503, {
            "status": "degraded",
            "devices": {},
            "sync": {"pending": 0, "rejected": 0},
            "export": {"pending": 0},
        }
    devices = {
        str(device): {
            "state": str(v.get("state")) if v.get("state") in DEVICE_STATES else "error",
            "last_reading_at": v.get("last_reading_at"),
        }
        for device, v in dict(report.get("devices", {})).items()
    }
    sync = report.get("sync", {})
    export = report.get("export", {})
    rejected = int(sync.get("rejected", 0))
    degraded = rejected > 0 or any(d["state"] != "ok" for d in devices.values())
    return 200, {
        "status": "degraded" if degraded else "ok",
        "devices": devices,
        "sync": {"pending": int(sync.get("pending", 0)), "rejected": rejected},
        "export": {"pending": int(export.get("pending", 0))},
    }


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title="heliod",
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            # Bad parameters answer 400 {"error"} (documented per router), never 422.
            for path in doc.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = doc.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            schemas["Error"] = Error.model_json_schema()
            app.openapi_schema = doc
        return app.openapi_schema

    return build


def create_app(
    store: Store,
    config_view: Config,
    health_provider: HealthProvider,
    metrics_registry: CollectorRegistry,
    *,
    clock_us: Callable[[], int] = _system_clock_us,
    dashboard: bool = True,
) -> FastAPI:
    """The API (and, unless `dashboard` is False, the dashboard) over one store."""
    app = FastAPI(
        title="heliod",
        version="1",
        description="Read-only API of a heliod gateway (CONTRACT §6).",
        openapi_url=None,  # served below, behind the token
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    require_token = bearer_auth(config_view.api.tokens)
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": Error, "description": "a bad or unknown parameter (the message names it)"},
        401: {"model": Error, "description": "no valid bearer token"},
    }

    @app.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
    async def healthz() -> ExactJSON:
        status, body = await run_in_threadpool(health_body, store, health_provider)
        return ExactJSON(body, status_code=status, headers=NO_STORE)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        body = await run_in_threadpool(generate_latest, metrics_registry)
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(require_token)], responses=errors)
    api.include_router(plants_router(store, config_view, clock_us))
    api.include_router(ledger_router(store, config_view))
    app.include_router(api)

    app.openapi = _openapi(app)  # type: ignore[method-assign]

    @app.get(OPENAPI_PATH, include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi_document() -> ExactJSON:
        return ExactJSON(app.openapi())

    if dashboard:
        app.include_router(
            dashboard_router(
                store,
                config_view,
                require_token,
                lambda: health_body(store, health_provider)[1],
                clock_us=clock_us,
            )
        )
    app.state.require_token = require_token  # for routes added by the wiring
    return app
