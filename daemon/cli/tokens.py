"""`heliod api-token new NAME`: a fresh bearer token and the `[api] tokens` line holding its hash.

Only the SHA-256 of a token goes into the configuration, so a leaked configuration file
does not give access to the API; the token itself is printed once and never stored.
"""

from __future__ import annotations

import re
import secrets

from heliod.daemon.http.auth import token_hash

TOKEN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # the same rule as api.tokens[].name
TOKEN_BYTES = 32  # 256 bits of randomness, 43 URL-safe characters


def new_token(name: str) -> tuple[str, str]:
    """(token, config line) for a new API client called `name`; ValueError for a bad name."""
    if not TOKEN_NAME.fullmatch(name):
        raise ValueError(f"token name must match [A-Za-z0-9_.-]{{1,64}}, got {name!r}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, f'{{ name = "{name}", sha256 = "{token_hash(token)}" }}'
