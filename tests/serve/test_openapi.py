"""The OpenAPI document tells the truth: every error status and streaming content type is documented, and
schemathesis, generating requests from the document against the app (a fake engine), gets no server error and no
status code, content type or body the document does not describe. Bounded: 6 generated examples per operation (no
coverage phase), 30 s at most per example."""

from __future__ import annotations

from dataclasses import replace

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from personal_copilot.serve.app import AppSettings, create_app
from tests.serve.conftest import API_KEY, AUTH, FAKE_INFO, FakeEngine

GENERATION_PATHS = ["/generate", "/generate_stream", "/", "/v1/completions", "/v1/chat/completions", "/api/generate"]
GENERATION_PATHS += ["/api/chat", "/infill"]
STREAM_TYPES = {
    "/generate_stream": "text/event-stream",
    "/": "text/event-stream",
    "/v1/completions": "text/event-stream",
    "/v1/chat/completions": "text/event-stream",
    "/api/generate": "application/x-ndjson",
    "/api/chat": "application/x-ndjson",
    "/infill": "text/event-stream",
}


def make_app():
    """Short fake completions (4 tokens), few rows per request, the API key on."""
    fake = FakeEngine(info=replace(FAKE_INFO, max_new_tokens=4))
    return create_app(fake, AppSettings(api_key=API_KEY, max_rows_per_request=4, max_body_bytes=100_000))


def test_errors_and_streams_are_documented() -> None:
    with TestClient(make_app()) as client:
        paths = client.get("/openapi.json").json()["paths"]
    for path in GENERATION_PATHS:
        responses = paths[path]["post"]["responses"]
        assert {"400", "401", "404", "413", "422", "429", "500"} <= set(responses), path
        assert "application/json" in responses["422"]["content"], path
        assert STREAM_TYPES.get(path, "application/json") in responses["200"]["content"], path
    assert list(paths["/generate_stream"]["post"]["responses"]["200"]["content"]) == ["text/event-stream"]


schema = schemathesis.openapi.from_asgi("/openapi.json", make_app())  # schemathesis runs its lifespan


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=6,
    deadline=30_000,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_schemathesis_finds_no_server_error_and_no_undocumented_response(case) -> None:
    case.call_and_validate(
        headers=AUTH,
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
    )
