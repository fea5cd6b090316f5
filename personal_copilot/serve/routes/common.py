"""What the protocol routes share: the service dependency, collecting results (and stopping when the client leaves),
the one streaming loop over per-protocol stream formats (SSE or NDJSON framing; errors in the protocol's shape), and
recording results for the request's log line."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from personal_copilot.serve.batching import GenerationFailed, Ticket
from personal_copilot.serve.errors import error_body
from personal_copilot.serve.generation import GenerationRequest, GenerationResult, TokenEvent
from personal_copilot.serve.service import CompletionService

logger = logging.getLogger("personal_copilot.serve")
RESULTS_STATE = "pcopilot_results"
"""Key in the request's state (ASGI scope) under which routes leave their results for the log line."""
Build = Callable[[], Sequence[GenerationRequest]]
"""Builds a request's generation requests (called off the event loop, after the request is admitted)."""


def get_service(request: Request) -> CompletionService:
    return request.app.state.service


Service = Annotated[CompletionService, Depends(get_service)]


class ClientLeft(Exception):
    """The client closed its connection before its answer was ready (its generations were stopped)."""


def record(http: Request, result: GenerationResult) -> None:
    http.scope.setdefault("state", {}).setdefault(RESULTS_STATE, []).append(result)


async def _client_leaves(http: Request) -> None:
    """Returns when the client disconnects (the body has been read: what comes next is the disconnect)."""
    while (await http.receive())["type"] != "http.disconnect":
        pass


async def complete(
    http: Request, service: CompletionService, build: Build, rows: int = 1, field: str = "n"
) -> list[GenerationResult]:
    """Generates the requests and waits for all results (in request order); stops them if the client leaves.

    Raises:
        ClientLeft: the client disconnected first.
    """
    tickets = await service.start(build, rows, field=field)
    results = asyncio.ensure_future(asyncio.gather(*(ticket.result() for ticket in tickets)))
    left = asyncio.ensure_future(_client_leaves(http))
    try:
        await asyncio.wait({results, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        left.cancel()
        for ticket in tickets:
            ticket.close()
    if not results.done():
        results.cancel()
        logger.info("%s %s: the client left; stopped its %d generation(s)", http.method, http.url.path, len(tickets))
        raise ClientLeft()
    for result in results.result():
        record(http, result)
    return results.result()


class StreamFormat:
    """How one protocol streams a response: the frames of a token, of a finished completion, after the last one,
    and of an error (the protocol's non-streamed error body, as one more frame). SSE unless a subclass says NDJSON."""

    media_type = "text/event-stream"

    def frame(self, value: Any) -> str:
        """One server-sent event (`data: {json}` and a blank line)."""
        return f"data: {value if isinstance(value, str) else dumps(value)}\n\n"

    def token(self, index: int, event: TokenEvent) -> Iterable[Any]:
        return ()

    def finished(self, index: int, result: GenerationResult) -> Iterable[Any]:
        return ()

    def end(self, results: Sequence[GenerationResult]) -> Iterable[Any]:
        """After the last completion."""
        return ()

    def closing(self) -> Iterable[Any]:
        """The very last frames, after the end or an error (OpenAI's `[DONE]`)."""
        return ()


class NdjsonFormat(StreamFormat):
    media_type = "application/x-ndjson"

    def frame(self, value: Any) -> str:
        return dumps(value) + "\n"


async def _frames(http: Request, tickets: Sequence[Ticket], form: StreamFormat) -> AsyncIterator[str]:
    """The one streaming loop: every token of each ticket in turn, each ending with its result; an engine failure
    becomes an error frame. Closes the tickets when done or when the client leaves (which stops their generation)."""
    results: list[GenerationResult] = []
    try:
        for index, ticket in enumerate(tickets):
            async for item in ticket.events():
                if isinstance(item, TokenEvent):
                    values = form.token(index, item)
                else:
                    record(http, item)
                    results.append(item)
                    values = form.finished(index, item)
                for value in values:
                    yield form.frame(value)
        for value in form.end(results):
            yield form.frame(value)
    except GenerationFailed as error:
        yield form.frame(error_body(http.url.path, error.status, str(error)))
    finally:
        for ticket in tickets:
            ticket.close()
    for value in form.closing():
        yield form.frame(value)


async def stream(
    http: Request, service: CompletionService, build: Build, form: StreamFormat, rows: int = 1, field: str = "n"
) -> StreamingResponse:
    """A streamed response of the requests, framed by `form` (errors before the stream starts are plain responses)."""
    tickets = await service.start(build, rows, stream=True, field=field)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_frames(http, tickets, form), media_type=form.media_type, headers=headers)


class JsonBodyRoute(APIRoute):
    """Reads the body as JSON whatever its Content-Type says (Ollama does: its documented `curl -d '{…}'` sends
    `application/x-www-form-urlencoded`)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def read_as_json(request: Request):  # called before anything reads the request's headers
            headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
            request.scope["headers"] = [*headers, (b"content-type", b"application/json")]
            return await handler(request)

        return read_as_json


class EventStreamResponse(StreamingResponse):
    """A route that always streams SSE (as the OpenAPI document says)."""

    media_type = "text/event-stream"


SSE_EVENT = {
    "type": "object",
    "properties": {"data": {"type": "string", "description": "a JSON object (OpenAI's stream ends with `[DONE]`)"}},
    "required": ["data"],
}
"""One server-sent event, as OpenAPI before 3.2 describes a `text/event-stream` (its `schema` is each event's)."""
NDJSON_LINE = {"type": "string", "description": "one JSON object per line"}


def streamed(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entry of a route that may stream: its 200 also comes as `media_type`."""
    schema = SSE_EVENT if media_type == "text/event-stream" else NDJSON_LINE
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def unix_time() -> int:
    return int(time.time())
