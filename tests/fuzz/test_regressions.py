"""What the fuzzer found, each pinned by a test (the fix is named in each docstring)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.fuzz.conftest import Api


def test_a_405_names_every_method_of_the_path(api: Api) -> None:
    """GET and POST /v1/webhooks are two routes: Starlette's 405 named only the first
    (``Allow: GET``). app/web/problems.py now lists every route matching the path."""
    for path, methods in [
        ("/v1/webhooks", {"GET", "POST"}),
        ("/v1/webhooks/1", {"GET", "PATCH", "DELETE"}),
        ("/v1/symbols", {"GET", "POST"}),
        ("/v1/signals", {"GET"}),
    ]:
        response = api.client.request("PUT", path, headers=api.headers)
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.headers["allow"].split(", ")) == methods, path


def _operations(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    schema = api.client.get("/openapi.json").json()
    return [
        (method.upper(), path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]


def test_the_openapi_description_declares_problem_json_errors(api: Api) -> None:
    """Errors were declared as FastAPI's application/json ``HTTPValidationError``, and
    404 (unknown symbol or subscription), 401 and 400 (a body that is not JSON) not at
    all, while every error is sent as problem+json."""
    schema = api.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
    }
    for method, path, operation in _operations(api):
        responses = operation["responses"]
        for status, response in responses.items():
            if status[0] in "45":
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)
        if "{" in path:
            assert "404" in responses, (method, path)
        if "requestBody" in operation:
            assert "400" in responses, (method, path)
        if path.startswith("/v1/webhooks"):
            assert "401" in responses, (method, path)
    declared = {(m, p): o["responses"] for m, p, o in _operations(api)}
    assert "404" in declared[("GET", "/v1/compare")]
    assert "404" in declared[("GET", "/v1/scan")]


def test_an_error_as_sent_matches_the_declared_problem(api: Api) -> None:
    response = api.client.get("/v1/signals/%5ERUT", params={"fast": "x"})
    assert response.status_code == 422
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert (
        body["detail"] == "query.fast: Input should be a valid integer, unable to parse "
        "string as an integer"
    )


def test_event_times_carry_their_offset(api: Api) -> None:
    """On SQLite ``created_at`` came back without an offset, which is not an RFC 3339
    date-time (the declared format). app/signals/schemas.py reads a stored naive time
    as the UTC it was written in."""
    events = api.client.get("/v1/events", params={"limit": "5"}).json()["events"]
    assert events
    for event in events:
        stamp = datetime.fromisoformat(event["created_at"])
        assert stamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/webhooks/9223372036854775808",
        "/v1/webhooks/2147483648",
        "/v1/webhooks/0",
        "/v1/webhooks/-1",
        "/v1/webhooks/1/deliveries/9223372036854775808/retry",
    ],
)
def test_an_id_outside_its_column_is_a_422(api: Api, path: str) -> None:
    """2**63 overflowed SQLite's driver and 2**31 PostgreSQL's INTEGER column: 500s.
    app/webhooks/router.py bounds each id to its column."""
    method = "POST" if path.endswith("/retry") else "GET"
    response = api.client.request(method, path, headers=api.headers)
    assert response.status_code == 422
    assert (
        "less than or equal" in response.json()["detail"]
        or "greater than" in (response.json()["detail"])
    )


def test_the_largest_ids_that_fit_are_a_404(api: Api) -> None:
    for path, method in [
        ("/v1/webhooks/2147483647", "GET"),
        (f"/v1/webhooks/{api.subscription_id}/deliveries/9223372036854775807/retry", "POST"),
    ]:
        assert api.client.request(method, path, headers=api.headers).status_code == 404


@pytest.mark.parametrize(
    "method, path, kwargs, where",
    [
        ("GET", "/v1/events", {"params": {"symbol": "^RUT\x00"}}, "query.symbol"),
        ("POST", "/v1/webhooks", {"json": {"url": "https://a\x00.example.com/"}}, "url"),
        (
            "POST",
            "/v1/webhooks",
            {"json": {"url": "https://example.com/h", "symbols": ["^RUT\x00"]}},
            "symbols.0",
        ),
        (
            "POST",
            "/v1/webhooks",
            {"json": {"url": "https://example.com/h", "description": "a\x00"}},
            "description",
        ),
    ],
)
def test_nul_in_stored_text_is_a_422(
    api: Api, method: str, path: str, kwargs: dict[str, Any], where: str
) -> None:
    """PostgreSQL text cannot hold NUL: these were 500s there. StoredText refuses it."""
    response = api.client.request(method, path, headers=api.headers, **kwargs)
    assert response.status_code == 422
    assert response.json()["detail"] == f"{where}: must not contain NUL characters"


@pytest.mark.parametrize("start", ["20240101", "2024-W01-1", "ytd ", "2024-01-01T00:00"])
def test_compare_start_is_ytd_or_yyyy_mm_dd(api: Api, start: str) -> None:
    """``start`` was any string ``date.fromisoformat`` took (``20240101``, ISO weeks)."""
    response = api.client.get("/v1/compare", params={"start": start})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"query.start: start {start!r} is neither 'ytd' nor a YYYY-MM-DD date"
    )


def test_compare_still_takes_ytd_and_a_date(api: Api) -> None:
    for start in ["ytd", "2026-01-02"]:
        response = api.client.get("/v1/compare", params={"start": start})
        assert response.status_code == 200, response.text
        assert len(response.json()["returns"]) == 3
