"""Errors as each protocol spells them, the same in a plain response and inside a stream, and their description in the
OpenAPI document: OpenAI `{"error": {message, type, param, code}}` (plus FastAPI's `detail`, which llm-ls reads),
Ollama `{"error": message}`, TGI and llama.cpp `{"error": message, "error_type": type}`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

ERROR_TYPES = {400: "validation", 401: "authentication", 404: "not_found", 405: "method_not_allowed"}
ERROR_TYPES |= {413: "payload_too_large", 422: "validation", 429: "overloaded", 500: "generation"}
ERROR_TYPES |= {502: "engine_error", 504: "engine_timeout"}
CLIENT_LEFT = 499
"""Status logged (never sent) for a request whose client left before its answer (nginx's "client closed request")."""


def printable(text: str) -> str:
    """`text` that encodes as UTF-8: lone surrogates (which JSON can carry but UTF-8 cannot) as `\\udxxx` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(path: str, status: int, message: str, field: str | None = None) -> dict[str, Any]:
    """An error as the protocol of `path` spells it (the same in a response and in a stream's error event)."""
    kind = ERROR_TYPES.get(status, "error")
    message = printable(message)
    field = None if field is None else printable(field)
    if path.startswith("/v1/"):
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": field, "code": status}}
        return body | {"detail": [{"loc": ["body", field] if field else ["body"], "msg": message, "type": kind}]}
    if path.startswith("/api/"):
        return {"error": message}
    return {"error": message, "error_type": kind}


# --- the OpenAPI description of the error bodies ----------------------------------------------------------------


class OpenAIErrorObject(BaseModel):
    message: str
    type: str
    param: str | None
    code: int


class ValidationItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class OpenAIError(BaseModel):
    """OpenAI's error object, plus FastAPI's `detail` list (llm-ls reads it)."""

    error: OpenAIErrorObject
    detail: list[ValidationItem]


class OllamaError(BaseModel):
    error: str


class TgiError(BaseModel):
    """text-generation-inference's error (also llama.cpp's /infill here)."""

    error: str
    error_type: str


ERROR_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or wrong API key (`Authorization: Bearer KEY`)",
    404: "Unknown model or adapter",
    413: "Body over --max_body_bytes, or more completions than --max_rows_per_request",
    422: "Invalid request: the message names the field",
    429: "Too many generations under way (--max_concurrent_requests); retry shortly",
    500: "The engine failed on this request",
    502: "The inference engine behind this server (--engine) failed or broke the connection",
    504: "The inference engine behind this server (--engine) did not answer within --engine_timeout",
}


def error_responses(model: type[BaseModel], by_reference: bool = False) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a router whose errors have the shape `model`; `by_reference` for a route whose own
    responses are not JSON (FastAPI would describe `model` in the route's media type), once a router has `model`."""
    if by_reference:
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
        return {status: {"description": text, "content": content} for status, text in ERROR_DESCRIPTIONS.items()}
    return {status: {"model": model, "description": text} for status, text in ERROR_DESCRIPTIONS.items()}
