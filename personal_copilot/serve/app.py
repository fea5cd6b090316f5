"""The FastAPI application: routes of every protocol over one engine, the API key check, body-size, row and
concurrency limits, errors in each protocol's shape (never a 500 for a client's mistake), and a log line per request.
Knows FastAPI, never transformers: the engine is any object with the `Engine` protocol, so tests drive this with a fake
one.

    app = create_app(engine, AppSettings(api_key="secret"))   # then: uvicorn.run(app, host="127.0.0.1")
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import personal_copilot
from personal_copilot.serve.auth import OPEN_PATHS, check_api_key
from personal_copilot.serve.batching import ConcurrentScheduler, GenerationFailed, Scheduler
from personal_copilot.serve.errors import CLIENT_LEFT, error_body
from personal_copilot.serve.generation import Engine, GenerationResult, RequestError, StreamingEngine
from personal_copilot.serve.routes import llamacpp, ollama, openai, tgi
from personal_copilot.serve.routes.common import RESULTS_STATE, ClientLeft
from personal_copilot.serve.service import CompletionService

logger = logging.getLogger("personal_copilot.serve")


@dataclass(frozen=True)
class AppSettings:
    """Limits and access of the HTTP server."""

    api_key: str | None = None
    max_batch_size: int = 8
    batch_window_ms: float = 5.0
    max_concurrent_requests: int = 64
    max_body_bytes: int = 2_000_000
    max_rows_per_request: int = 32


def _error_response(
    path: str, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else headers
    return JSONResponse(error_body(path, status, message, field), status_code=status, headers=headers)


def _describe_validation(error: RequestValidationError, content_type: str | None) -> tuple[str, str | None]:
    """`parameters.max_new_tokens: Input should be greater than or equal to 1; …` and the first field's name; a body
    that was not read as JSON for its Content-Type says so."""
    not_json = "json" not in (content_type or "").lower()
    if not_json and any(tuple(item.get("loc", ())) == ("body",) for item in error.errors()):
        given = f"its Content-Type is {content_type!r}" if content_type else "it has no Content-Type"
        return f"the body was not read as JSON: {given}; send it with `Content-Type: application/json`", None
    described: dict[tuple[str, str], None] = {}  # (location, message), in order, without repeats
    for item in error.errors():
        parts = [str(part) for part in item.get("loc", ()) if part != "body" and not _is_union_branch(part)]
        described[".".join(parts), str(item.get("msg"))] = None
    for location, message in list(described):  # a union's other branch ("should be a valid string" for a list)
        if message.startswith("Input should be a valid") and any(
            (where == location and not said.startswith("Input should be a valid")) or where.startswith(f"{location}.")
            for where, said in described
        ):
            described.pop((location, message))
    parts = [f"{location}: {message}" if location else message for location, message in described]
    fields = [location or None for location, _ in described]
    return "; ".join(parts) or "invalid request body", (fields[0] if fields else None)


def _is_union_branch(part: object) -> bool:
    """pydantic's name of a union branch in an error location (`list[function-after[…]]`, `str`, `int`)."""
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "float", "bool", "list", "dict"))


class BodySizeLimit:
    """Answers 413 to a request body over `max_bytes` (declared or streamed) before any route reads it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body over {self.max_bytes} bytes (--max_body_bytes)"
        await _error_response(scope["path"], 413, message)(scope, receive, send)


class ApiKeyCheck:
    """Answers 401 to a request without the server's key, before its body is read (every path but OPEN_PATHS)."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            try:
                check_api_key(authorization, self.api_key)
            except RequestError as error:
                await _error_response(scope["path"], error.status, error.message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequestLog:
    """One log line per request, written when its response (a stream included) is complete: method, path, status,
    latency and, for generations, adapter, prompt tokens, generated tokens, tokens/s and why it stopped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_log(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                results = scope.get("state", {}).get(RESULTS_STATE, [])
                level = logging.DEBUG if scope["path"] in OPEN_PATHS else logging.INFO
                logger.log(level, "%s %s %d %s", scope["method"], scope["path"], status, _fields(results, start))

        await self.app(scope, receive, send_and_log)


def _fields(results: list[GenerationResult], start: float) -> str:
    latency = time.perf_counter() - start
    if not results:
        return f"latency={latency:.3f}s"
    generated = sum(r.generated_tokens for r in results)
    adapters = ",".join(sorted({r.adapter or "base" for r in results}))
    finish = ",".join(sorted({r.finish_reason for r in results}))
    return (
        f"adapter={adapters} prompt_tokens={sum(r.prompt_tokens for r in results)} generated_tokens={generated} "
        f"latency={latency:.3f}s tokens/s={generated / max(latency, 1e-9):.1f} finish={finish}"
        + (
            f" truncated={sum(r.truncated_tokens for r in results)}"
            if any(r.truncated_tokens for r in results)
            else ""
        )
    )


def create_app(engine: Engine | StreamingEngine, settings: AppSettings | None = None) -> FastAPI:
    """The server's application over `engine`; the generation thread runs while the app's lifespan does (an engine
    that batches by itself, a `StreamingEngine`, gets each request as it arrives instead)."""
    settings = settings or AppSettings()
    if isinstance(engine, StreamingEngine):
        scheduler: Scheduler = ConcurrentScheduler(engine, max_pending=settings.max_concurrent_requests)
    else:
        scheduler = Scheduler(
            engine,
            max_batch_size=settings.max_batch_size,
            max_pending=settings.max_concurrent_requests,
            batch_window=settings.batch_window_ms / 1000,
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()
            service.close()
            if isinstance(engine, StreamingEngine):
                await engine.aclose()

    app = FastAPI(
        title="personal-copilot",
        version=personal_copilot.__version__,
        summary=f"Code completion with {engine.info.name}: TGI, OpenAI, Ollama and llama.cpp protocols.",
        lifespan=lifespan,
    )
    service = CompletionService(engine, scheduler, settings.max_rows_per_request)
    app.state.service = service
    for module in (tgi, openai, ollama, llamacpp):
        app.include_router(module.router)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Answers at once, also while generations run, and without the API key."""
        return {"status": "ok"}

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        return _error_response(request.url.path, error.status, error.message, error.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        message, field = _describe_validation(error, request.headers.get("content-type"))
        return _error_response(request.url.path, 422, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = f"no route {request.method} {request.url.path}" if error.status_code == 404 else str(error.detail)
        return _error_response(request.url.path, error.status_code, message, headers=error.headers)

    @app.exception_handler(GenerationFailed)
    async def generation_failed(request: Request, error: GenerationFailed) -> JSONResponse:
        return _error_response(request.url.path, error.status, str(error))

    @app.exception_handler(ClientLeft)
    async def client_left(request: Request, error: ClientLeft) -> Response:
        return Response(status_code=CLIENT_LEFT)  # nobody reads it: the status is for the log line

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        return _error_response(request.url.path, 500, f"internal error: {type(error).__name__}: {error}")

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)  # the innermost of the three
    app.add_middleware(ApiKeyCheck, api_key=settings.api_key)
    app.add_middleware(RequestLog)
    return app
