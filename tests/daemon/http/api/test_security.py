"""Who may read what: tokens on every route but /healthz, /metrics and the public dashboard."""

from __future__ import annotations

import hashlib
import logging
import tomllib
from pathlib import Path

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from heliod.daemon.cli.tokens import new_token
from heliod.daemon.http.api.app import API_PREFIX, OPENAPI_PATH
from heliod.daemon.http.auth import matching_name
from tests.daemon.http.api.conftest import AUTH, build_app, serve
from tests.daemon.ledger_fixture import OTHER_TOKEN, TOKEN, Ledger, make_ledger

OPEN = {"/healthz", "/metrics", "/verify.py"}  # the offline verifier is public
PAGE = {"/", "/dashboard/static/{name:path}"}  # the page that asks for the token, and its assets


def concrete(path: str) -> str:
    """A route's path with its parameters filled in."""
    return (
        path.replace("{plant_id}", "alpha")
        .replace("{name:path}", "app.js")
        .replace("{backer}", "alice")
    )


def routes(client: TestClient) -> list[str]:
    """Every GET route the app serves, the OpenAPI document and the dashboard included."""
    # FastAPI ≥ 0.120 keeps included routers lazily; iter_route_contexts flattens them.
    flat = iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
    return sorted({str(r.path) for r in flat if "GET" in (r.methods or ())})


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        f"Bearer {hashlib.sha256(TOKEN.encode()).hexdigest()}",  # the hash is not the token
        f"Token {TOKEN}",
    ],
)
def test_no_route_answers_without_a_valid_token(
    client: TestClient, authorization: str | None
) -> None:
    found = routes(client)
    assert {f"{API_PREFIX}/credits", OPENAPI_PATH, "/dashboard/data.json"} <= set(found)
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in found:
        response = client.get(concrete(path), headers=headers)
        if path in OPEN or path in PAGE:
            assert response.status_code == 200, path
            continue
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {
            "error": "a valid API token is required (Authorization: Bearer <token>)"
        }


def test_every_configured_token_works(client: TestClient) -> None:
    for token in (TOKEN, OTHER_TOKEN):
        for path in (f"{API_PREFIX}/plants", OPENAPI_PATH, "/dashboard/data.json"):
            response = client.get(path, headers={"Authorization": f"bearer {token}"})
            assert response.status_code == 200, path


def test_a_public_dashboard_needs_no_token_but_the_api_still_does(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path, public=True)
    with TestClient(build_app(ledger)) as client:
        assert client.get("/dashboard/data.json").status_code == 200
        assert client.get(f"{API_PREFIX}/plants").status_code == 401
        assert client.get(OPENAPI_PATH).status_code == 401
    ledger.store.close()


class CountingHash:
    """A configured token that counts how often its hash is read."""

    def __init__(self, name: str, token: str) -> None:
        self.name = name
        self._sha = hashlib.sha256(token.encode()).hexdigest()
        self.reads = 0

    @property
    def sha256(self) -> str:
        self.reads += 1
        return self._sha


def test_every_hash_is_compared_even_after_a_match() -> None:
    tokens = [CountingHash(f"client{i}", f"token-{i}") for i in range(5)]
    assert matching_name("token-0", tokens) == "client0"
    assert [t.reads for t in tokens] == [1] * 5  # no early exit: timing tells nothing
    assert matching_name("token-4", tokens) == "client4"
    assert matching_name("token-5", tokens) is None
    assert [t.reads for t in tokens] == [3] * 5


def test_api_token_new_makes_a_working_token(tmp_path: Path) -> None:
    token, line = new_token("grafana.reader")
    assert len(token) >= 43  # 256 bits, URL-safe base64
    entry = tomllib.loads(f"tokens = [{line}]")["tokens"][0]
    assert entry == {"name": "grafana.reader", "sha256": hashlib.sha256(token.encode()).hexdigest()}
    assert new_token("grafana.reader")[0] != token
    ledger = make_ledger(tmp_path)
    config = ledger.config.model_copy(
        update={
            "api": ledger.config.api.model_copy(
                update={"tokens": [type(ledger.config.api.tokens[0])(**entry)]}
            )
        }
    )
    ledger.config = config
    with TestClient(build_app(ledger)) as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get(f"{API_PREFIX}/plants", headers=auth).status_code == 200
        assert client.get(f"{API_PREFIX}/plants", headers=AUTH).status_code == 401
    ledger.store.close()
    for bad in ("", "two words", "x" * 65, 'quote"'):
        with pytest.raises(ValueError, match="token name"):
            new_token(bad)


def test_a_token_never_reaches_a_log_line(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # uvicorn's access log on, at DEBUG, everything propagated to the captured root logger.
    app = build_app(ledger)
    with serve(app, log_config=None, access_log=True, log_level="debug") as base:
        for token in (TOKEN, "wrong-token-9f8e7d6c", OTHER_TOKEN):
            auth = {"Authorization": f"Bearer {token}"}
            for path in ("/api/v1/plants", "/api/v1/credits?after=zz", "/healthz", "/nowhere"):
                httpx.get(base + path, headers=auth, timeout=5)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /api/v1/plants" in text  # the access log did run
    for secret in (TOKEN, "wrong-token-9f8e7d6c", OTHER_TOKEN):
        assert secret not in text
