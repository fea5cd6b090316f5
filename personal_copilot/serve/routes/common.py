"""What the protocol routes share: the service dependency, collecting or streaming results (and recording them for
the request's log line), and SSE / NDJSON framing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse

from personal_copilot.serve.batching import Ticket
from personal_copilot.serve.generation import GenerationRequest, GenerationResult, TokenEvent
from personal_copilot.serve.service import CompletionService

RESULTS_STATE = "pcopilot_results"
"""Key in the request's state (ASGI scope) under which routes leave their results for the log line."""


def get_service(request: Request) -> CompletionService:
    return request.app.state.service


Service = Annotated[CompletionService, Depends(get_service)]


def record(http: Request, result: GenerationResult) -> None:
    http.scope.setdefault("state", {}).setdefault(RESULTS_STATE, []).append(result)


async def complete(
    http: Request, service: CompletionService, requests: Sequence[GenerationRequest]
) -> list[GenerationResult]:
    """Generates the requests and waits for all results (in request order)."""
    tickets = service.start(requests)
    try:
        results = list(await asyncio.gather(*(ticket.result() for ticket in tickets)))
    finally:
        for ticket in tickets:
            ticket.close()
    for result in results:
        record(http, result)
    return results


async def stream(http: Request, tickets: Sequence[Ticket]) -> AsyncIterator[tuple[int, TokenEvent | GenerationResult]]:
    """(index, event) for every token of each ticket in turn, each ending with its result; closes the tickets when
    done or when the client leaves (which stops their generation)."""
    try:
        for index, ticket in enumerate(tickets):
            async for item in ticket.events():
                if isinstance(item, GenerationResult):
                    record(http, item)
                yield index, item
    finally:
        for ticket in tickets:
            ticket.close()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sse(value: Any) -> str:
    """One server-sent event (`data: {json}` and a blank line)."""
    return f"data: {value if isinstance(value, str) else dumps(value)}\n\n"


def ndjson(value: Any) -> str:
    return dumps(value) + "\n"


def sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def ndjson_response(lines: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(lines, media_type="application/x-ndjson")


def unix_time() -> int:
    return int(time.time())
