"""llama.cpp's server: `POST /infill` (`input_prefix`, `input_suffix`, the cursor line's `prompt` and other files in
`input_extra` → `content`), as llama.vscode and llama.vim call it; SSE when `stream` is true."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request

from personal_copilot.serve.batching import GenerationFailed, Ticket
from personal_copilot.serve.generation import GenerationResult, TokenEvent
from personal_copilot.serve.protocol import InfillRequest
from personal_copilot.serve.routes.common import Service, complete, sse, sse_response, stream

router = APIRouter(tags=["llama.cpp"])
STOP_TYPES = {"eos_token": "eos", "stop_sequence": "word", "block_end": "word"}


def _final(model: str, result: GenerationResult) -> dict[str, Any]:
    milliseconds = result.seconds * 1000
    return {
        "stop": True,
        "model": model,
        "tokens_predicted": result.generated_tokens,
        "tokens_evaluated": result.prompt_tokens,
        "truncated": result.truncated_tokens > 0,
        "stop_type": STOP_TYPES.get(result.finish_reason, "limit"),
        "timings": {
            "prompt_n": result.prompt_tokens,
            "predicted_n": result.generated_tokens,
            "predicted_ms": milliseconds,
            "predicted_per_second": result.generated_tokens / max(result.seconds, 1e-9),
        },
    }


async def _events(http: Request, tickets: list[Ticket], model: str) -> AsyncIterator[str]:
    try:
        async for _, item in stream(http, tickets):
            if isinstance(item, TokenEvent):
                if item.text:
                    yield sse({"content": item.text, "stop": False})
            else:
                yield sse({"content": "", **_final(model, item)})
    except GenerationFailed as error:
        yield sse({"error": {"code": 500, "message": str(error), "type": "server_error"}})


@router.post("/infill")
async def infill(body: InfillRequest, http: Request, service: Service):
    """The middle between `input_prefix` + `prompt` and `input_suffix`."""
    model = body.model or service.info.name
    if body.stream:
        return sse_response(_events(http, service.start([body.generation_request()], stream=True), model))
    (result,) = await complete(http, service, [body.generation_request()])
    return {"content": result.text, **_final(model, result)}
