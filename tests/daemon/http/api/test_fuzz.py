"""The API fuzzed from its own OpenAPI document (schemathesis): no server error, and every
answer matches the document (status codes, content types, bodies, the token rule)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from heliod.daemon.http.api.app import OPENAPI_PATH
from tests.daemon.http.api.conftest import AUTH, build_app
from tests.daemon.http.api.test_goal_routes import GOALS
from tests.daemon.ledger_fixture import make_ledger

# `from`/`to`/`step` of the production route are each valid alone but not in every
# combination (to after from, at most 10,000 points): OpenAPI cannot say so, so there a
# schema-valid request may be answered 400 on purpose.
# Likewise a consistency proof needs from ≤ to ≤ the log's size, and `since` at most its size.
CROSS_PARAMETER_RULES = {
    "/api/v1/plants/{plant_id}/production",
    "/api/v1/plants/{plant_id}/log/consistency",
    "/api/v1/plants/{plant_id}/backers/{backer}/proof",
}
NO_INPUT = {"/healthz", "/metrics", "/verify.py"}
PATHS = [
    "/api/v1/anomalies",
    "/api/v1/credits",
    "/api/v1/mints",
    "/api/v1/plants",
    "/api/v1/plants/{plant_id}/backers/{backer}/proof",
    "/api/v1/plants/{plant_id}/balances",
    "/api/v1/plants/{plant_id}/log/checkpoint",
    "/api/v1/plants/{plant_id}/log/consistency",
    "/api/v1/plants/{plant_id}/log/entries",
    "/api/v1/plants/{plant_id}/log/key",
    "/api/v1/plants/{plant_id}/milestones",
    "/api/v1/plants/{plant_id}/production",
    "/healthz",
    "/metrics",
    "/verify.py",
]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The app over a ledger with mints, credits, anomalies and goal events (alpha has
    impact figures and challenges, beta neither), and the document it serves."""
    ledger = make_ledger(Path(tmp_path_factory.mktemp("fuzz")), alpha_goals=GOALS)
    ledger.goals = True
    ledger.produce("alpha", 3)
    ledger.produce("beta", 2)
    ledger.anomalies("alpha")
    app = build_app(ledger)
    with TestClient(app) as client:
        # Fetched as a client would: the document needs the token too.
        doc = json.loads(client.get(OPENAPI_PATH, headers=AUTH).text)
    yield app, doc
    ledger.store.close()


def test_the_document_covers_every_route(document: tuple[Any, dict[str, Any]]) -> None:
    doc = document[1]
    assert sorted(doc["paths"]) == PATHS
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        responses = item["get"]["responses"]
        assert "422" not in responses, path  # bad parameters are 400 {"error"}
        if path.startswith("/api/"):
            assert item["get"]["security"] == [{"bearer": []}], path
            assert {"200", "400", "401"} <= set(responses), path


@pytest.mark.parametrize(
    ("path", "mode"),
    [
        pytest.param(path, mode, id=f"{path}-{mode.value}")
        for path in PATHS
        for mode in GenerationMode
        # Negative cases need something to get wrong: a parameter or the token.
        if not (mode is GenerationMode.NEGATIVE and path in NO_INPUT)
    ],
)
def test_fuzzed_requests(
    document: tuple[Any, dict[str, Any]], path: str, mode: GenerationMode
) -> None:
    app, doc = document
    schema = schemathesis.openapi.from_dict(doc)
    schema.app = app  # called in-process through ASGI
    excluded = [positive_data_acceptance] if path in CROSS_PARAMETER_RULES else []

    @given(case=schema[path]["GET"].as_strategy(mode))
    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        # The valid token, unless this negative case is about a missing Authorization.
        keep = mode is GenerationMode.POSITIVE or "Authorization" in (case.headers or {})
        case.call_and_validate(headers=AUTH if keep else None, excluded_checks=excluded)

    check()
