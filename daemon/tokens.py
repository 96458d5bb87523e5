"""`heliod api-token new NAME`: a fresh bearer token and the `[api] tokens` line holding its hash.

Only the SHA-256 of a token goes into the configuration, so a leaked configuration file
does not give access to the API; the token itself is printed once and never stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # the same rule as api.tokens[].name
TOKEN_BYTES = 32  # 256 bits of randomness, 43 URL-safe characters


def token_hash(token: str) -> str:
    """The lowercase hex SHA-256 of a token, as `api.tokens[].sha256` holds it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(name: str) -> tuple[str, str]:
    """(token, config line) for a new API client called `name`; ValueError for a bad name."""
    if not TOKEN_NAME.fullmatch(name):
        raise ValueError(f"token name must match [A-Za-z0-9_.-]{{1,64}}, got {name!r}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, f'{{ name = "{name}", sha256 = "{token_hash(token)}" }}'
