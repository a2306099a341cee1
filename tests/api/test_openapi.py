"""The OpenAPI description says what the server does: who needs a key, which content
types answer, which values a field takes; and the docs are counted in the metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.db.engine import Database
from app.settings import Settings
from tests.conftest import fixed_clock

PROTECTED = {
    ("post", "/v1/symbols"),
    ("delete", "/v1/symbols/{symbol}"),
    ("put", "/v1/universes/{name}"),
    ("delete", "/v1/universes/{name}"),
    ("get", "/v1/webhooks"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks/{subscription_id}"),
    ("patch", "/v1/webhooks/{subscription_id}"),
    ("delete", "/v1/webhooks/{subscription_id}"),
    ("post", "/v1/webhooks/{subscription_id}/rotate-secret"),
    ("get", "/v1/webhooks/{subscription_id}/deliveries"),
    ("post", "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/retry"),
    ("post", "/v1/webhooks/{subscription_id}/test"),
    ("post", "/v1/webhooks/{subscription_id}/replay"),
    ("post", "/v1/webhooks/{subscription_id}/snapshot"),
}


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db, clock=fixed_clock)) as test_client:
        yield test_client


@pytest.fixture
def description(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def test_operations_that_need_a_key_declare_the_bearer_scheme(
    description: dict[str, Any], client: TestClient
) -> None:
    schemes = description["components"]["securitySchemes"]
    assert schemes == {
        "ApiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`crosswatch keys create`) or the admin token",
        }
    }
    secured = {
        (method, path)
        for path, operations in description["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == [{"ApiKey": []}]
    }
    assert secured == PROTECTED
    # Declaring the scheme changed no answer: 401 problems, each with its reason.
    reasons = {
        None: "an API key is required: Authorization: Bearer <key>",
        "Basic dXNlcjpwYXNz": "the Authorization header must be: Bearer <key>",
        "Bearer   ": "the Authorization header must be: Bearer <key>",
        "Bearer cw_unknown": "the API key is unknown or revoked",
    }
    for header, reason in reasons.items():
        headers = {} if header is None else {"Authorization": header}
        answer = client.get("/v1/webhooks", headers=headers)
        assert answer.status_code == 401, header
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["detail"] == reason


def test_text_answers_declare_their_content_types(
    description: dict[str, Any], client: TestClient
) -> None:
    closes = description["paths"]["/v1/symbols/{symbol}/closes"]["get"]["responses"]["200"]
    assert closes["content"]["text/csv"] == {"schema": {"type": "string"}}
    assert closes["content"]["application/json"] == {
        "schema": {"$ref": "#/components/schemas/BarList"}
    }
    metrics = description["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert metrics == {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}
    served = client.get("/metrics").headers["content-type"]
    assert served.startswith("text/plain; version=0.0.4")


def test_event_types_and_regimes_are_named_enums(description: dict[str, Any]) -> None:
    schemas = description["components"]["schemas"]
    event_type = {"$ref": "#/components/schemas/EventType"}
    assert schemas["EventType"]["enum"] == [
        "golden_cross",
        "death_cross",
        "peak",
        "trough",
        "cross_approaching",
        "cross_watch",
        "cross_watch_missed",
        "daily_brief",
        "retracted",
        "snapshot",
        "test",
    ]
    assert schemas["EventOut"]["properties"]["type"] == event_type
    assert schemas["ScanMatch"]["properties"]["type"] == event_type
    assert schemas["RecentEvent"]["properties"]["type"] == event_type
    assert schemas["DeliveryOut"]["properties"]["event_type"] == event_type
    (type_parameter,) = [
        parameter
        for parameter in description["paths"]["/v1/events"]["get"]["parameters"]
        if parameter["name"] == "type"
    ]
    assert type_parameter["schema"]["anyOf"] == [event_type, {"type": "null"}]
    assert schemas["Regime"]["enum"] == ["golden", "death"]
    for model in ("Signal", "SymbolCard"):
        regime = schemas[model]["properties"]["regime"]
        assert regime["anyOf"] == [{"$ref": "#/components/schemas/Regime"}, {"type": "null"}]
    payloads = schemas["EventOut"]["properties"]["data"]["anyOf"]
    assert len(payloads) == 9 and all("$ref" in payload for payload in payloads)
    returns = schemas["ForwardReturns"]
    assert list(returns["properties"]) == ["21", "63", "126", "252"]
    assert returns["required"] == ["21", "63", "126", "252"]


def test_validation_problems_declare_their_errors(
    description: dict[str, Any], client: TestClient
) -> None:
    schemas = description["components"]["schemas"]
    errors = schemas["Problem"]["properties"]["errors"]
    assert errors["items"] == {"$ref": "#/components/schemas/ProblemError"}
    assert set(schemas["ProblemError"]["required"]) == {"loc", "msg"}
    answer = client.get("/v1/events", params={"limit": 0, "type": "peak\x00"})
    assert answer.status_code == 422
    assert {tuple(error["loc"]) for error in answer.json()["errors"]} == {
        ("query", "limit"),
        ("query", "type"),
    }


def test_the_docs_are_counted_under_their_own_routes(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    (asset,) = re.findall(r'src="(/static-offline-docs/swagger-ui-bundle\.js)"', page.text)
    assert client.get(asset).status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    counted = {
        match.group(1): float(match.group(2))
        for match in re.finditer(
            r'crosswatch_http_request_duration_seconds_count\{method="GET",route="([^"]+)",'
            r'status="(?:200|404)"\} (\S+)',
            client.get("/metrics").text,
        )
    }
    assert counted == {
        "/docs": 1.0,
        "/static-offline-docs": 1.0,
        "/openapi.json": 1.0,
        "unmatched": 1.0,
    }
