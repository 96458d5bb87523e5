"""Responses of the API: exact JSON (Decimals as written, never through a float) and errors.

Every error is `{"error": "<what is wrong, naming the parameter>"}` with its status:
400 for a bad parameter, 401 without a valid token, 404 for an unknown plant or route.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from heliod.rewards.exact_json import dumps

log = logging.getLogger("heliod.http")

NO_STORE = {"Cache-Control": "no-store"}


class ExactJSON(Response):
    """application/json where a Decimal is written as its exact decimal number."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """The body's bytes."""
        return dumps(content).encode("utf-8")


class ApiError(Exception):
    """An answer other than 200, with the message the client gets."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def bad_parameter(name: str, problem: str) -> ApiError:
    """A 400 naming the query parameter."""
    return ApiError(400, f"{name}: {problem}")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """`{"error": message}` with the given status."""
    return ExactJSON(
        {"error": message}, status_code=status, headers={**NO_STORE, **(headers or {})}
    )


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("query", "path", "header")]
        problems.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, FastAPI's own included, as `{"error": ...}`."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, _validation_message(exc))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        # A store that cannot be read, or a stored row that does not parse: the traceback
        # goes to the daemon's log (the server logs it again as it re-raises).
        log.error("API: %s", type(exc).__name__, exc_info=exc)
        return error_response(
            500, "internal error: the answer could not be built; see the daemon's log"
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        return error_response(exc.status_code, detail, exc.headers)


def wh(value_mwh: int | None) -> Decimal | None:
    """Integer mWh from the store as exact Wh (three decimal places)."""
    return None if value_mwh is None else Decimal(int(value_mwh)).scaleb(-3)


def only_params(*names: str) -> Callable[[Request], None]:
    """A dependency refusing query parameters other than `names` (a typo gets a clear 400)."""
    allowed = frozenset(names)

    def check(request: Request) -> None:
        # The raw query, blank names included (`?=x`), which request.query_params drops.
        raw = request.scope.get("query_string", b"").decode("latin-1")
        names = {name for name, _ in parse_qsl(raw, keep_blank_values=True)}
        unknown = sorted(names - allowed)
        if unknown:
            known = ", ".join(sorted(allowed)) or "none"
            raise ApiError(400, f"{unknown[0]}: unknown parameter (accepted: {known})")

    return check
