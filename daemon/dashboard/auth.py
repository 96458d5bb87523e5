"""Bearer-token check of CONTRACT §6, for the dashboard data when it is not public."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Protocol

from fastapi import HTTPException, Request, status


class TokenHash(Protocol):
    """A configured API token: its name and the hex SHA-256 of the token."""

    @property
    def name(self) -> str: ...
    @property
    def sha256(self) -> str: ...


def token_matches(presented: str, tokens: Iterable[TokenHash]) -> str | None:
    """Name of the configured token whose hash is SHA-256(presented), else None."""
    digest = hashlib.sha256(presented.encode("utf-8")).hexdigest()
    found = None
    for token in tokens:
        # Compare against every hash, in constant time each, so timing tells nothing.
        if hmac.compare_digest(digest, token.sha256.lower()):
            found = token.name
    return found


def bearer_auth(tokens: Iterable[TokenHash]) -> Callable[[Request], str]:
    """A FastAPI dependency: the caller's token name, or 401 without a valid bearer token."""
    known = list(tokens)

    def require_token(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        name = token_matches(value.strip(), known) if scheme.lower() == "bearer" else None
        if name is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="a valid API token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return name

    return require_token
