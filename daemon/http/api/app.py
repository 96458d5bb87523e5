"""The HTTP face of the daemon (docs/platform.md): `create_app` builds it; nothing runs at import.

Every route only reads: the API cannot change the ledger. `/api/...` needs a bearer
token; `/healthz` and `/metrics` do not, and the dashboard follows `dashboard_public`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.concurrency import run_in_threadpool

from heliod.adapters.clock import system_now_us
from heliod.adapters.store import Store
from heliod.daemon.http.api.ledger import ledger_router
from heliod.daemon.http.api.log import log_router
from heliod.daemon.http.api.models import Error, HealthOut
from heliod.daemon.http.api.plants import plants_router
from heliod.daemon.http.api.responses import NO_STORE, ExactJSON, install_error_handlers
from heliod.daemon.http.auth import bearer_auth
from heliod.daemon.http.dashboard import dashboard_router
from heliod.daemon.http.settings import HttpSettings
from heliod.daemon.read.health import Facts, assemble, report

log = logging.getLogger("heliod.api")

API_PREFIX = "/api/v1"
# The offline verifier's bytes as shipped (one standard-library file, docs/verification.md).
VERIFIER = (files("heliod.rewards.tlog") / "verify.py").read_bytes()
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"


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
    settings: HttpSettings,
    health: Facts,
    metrics_registry: CollectorRegistry,
    *,
    clock_us: Callable[[], int] = system_now_us,
    dashboard: bool = True,
) -> FastAPI:
    """The API (and, unless `dashboard` is False, the dashboard) over one store."""
    app = FastAPI(
        title="heliod",
        version="1",
        description="Read-only API of a heliod gateway (docs/platform.md).",
        openapi_url=None,  # served below, behind the token
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    require_token = bearer_auth(settings.tokens)
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": Error, "description": "a bad or unknown parameter (the message names it)"},
        401: {"model": Error, "description": "no valid bearer token"},
    }

    @app.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
    async def healthz() -> ExactJSON:
        status, body = await run_in_threadpool(report, health)
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
    api.include_router(plants_router(store, settings.plants, clock_us))
    api.include_router(ledger_router(store, settings.plants))
    api.include_router(log_router(store, settings.plants))
    app.include_router(api)

    @app.get(
        "/verify.py",
        response_class=Response,
        responses={200: {"content": {"text/x-python": {"schema": {"type": "string"}}}}},
        summary="The offline verifier: `python3 verify.py BUNDLE --key VKEY`",
    )
    def verifier() -> Response:
        # No token: a backer fetches it to check a bundle (docs/verification.md).
        return Response(VERIFIER, media_type="text/x-python; charset=utf-8")

    app.openapi = _openapi(app)  # type: ignore[method-assign]

    @app.get(OPENAPI_PATH, include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi_document() -> ExactJSON:
        return ExactJSON(app.openapi(), headers=NO_STORE)

    if dashboard:
        app.include_router(
            dashboard_router(
                store,
                settings,
                require_token,
                lambda: assemble(health()),
                clock_us=clock_us,
            )
        )
    app.state.require_token = require_token  # for routes added by the wiring
    return app
