"""What the HTTP faces are built from: the plants they show and who may read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heliod.daemon.read.plants import PlantView


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A configured API client: a name and the hex SHA-256 of its token."""

    name: str
    sha256: str


@dataclass(frozen=True)
class HttpSettings:
    """The plants, the API tokens and whether the dashboard is public (`[api]`)."""

    plants: Sequence[PlantView]
    tokens: Sequence[ApiToken]
    dashboard_public: bool = False
