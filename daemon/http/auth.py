"""The one bearer check of the API and the dashboard (docs/platform.md, "Authentication").

The configuration holds only hashes (`heliod api-token new` prints a token and its line).
A presented token is hashed once and compared with `hmac.compare_digest` against every
configured hash, without stopping at a match, so the answer time tells nothing about
which hash, or which prefix, came close. No token or hash is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Protocol

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

UNAUTHORIZED = "a valid API token is required (Authorization: Bearer <token>)"


class TokenHash(Protocol):
    """A configured API client: a name and the hex SHA-256 of its token."""

    @property
    def name(self) -> str: ...
    @property
    def sha256(self) -> str: ...


def token_hash(token: str) -> str:
    """The lowercase hex SHA-256 of a token, as `api.tokens[].sha256` holds it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def matching_name(presented: str, tokens: Iterable[TokenHash]) -> str | None:
    """Name of the configured token whose hash is SHA-256(presented), else None."""
    digest = token_hash(presented).encode("ascii")
    found = None
    for token in tokens:
        # Every hash is compared, each in constant time; the last match wins.
        if hmac.compare_digest(digest, token.sha256.lower().encode("ascii")):
            found = token.name
    return found


def bearer_auth(tokens: Iterable[TokenHash]) -> Callable[..., str]:
    """A FastAPI dependency returning the caller's token name, or answering 401."""
    known = list(tokens)
    scheme = HTTPBearer(
        auto_error=False,
        scheme_name="bearer",
        description="A token made by `heliod api-token new`; its SHA-256 is in [api] tokens.",
    )

    def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(scheme),  # noqa: B008 — FastAPI's idiom
    ) -> str:
        name = None
        if credentials is not None and credentials.scheme.lower() == "bearer":
            name = matching_name(credentials.credentials, known)
        if name is None:
            raise HTTPException(401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
        return name

    return require_token
