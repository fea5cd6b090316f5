"""llama.cpp's server: `POST /infill` (`input_prefix`, `input_suffix`, the cursor line's `prompt` and other files in
`input_extra` → `content`), as llama.vscode and llama.vim call it; SSE when `stream` is true."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request

from personal_copilot.serve.errors import TgiError, error_responses
from personal_copilot.serve.generation import GenerationResult, TokenEvent
from personal_copilot.serve.protocol import InfillRequest
from personal_copilot.serve.routes.common import Service, StreamFormat, complete, stream, streamed

router = APIRouter(tags=["llama.cpp"], responses=error_responses(TgiError))
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


class InfillEvents(StreamFormat):
    """An event per token with its `content`, then the final one with the counts."""

    def __init__(self, model: str) -> None:
        self.model = model

    def token(self, index: int, event: TokenEvent) -> Iterable[Any]:
        return [{"content": event.text, "stop": False}] if event.text else []

    def finished(self, index: int, result: GenerationResult) -> Iterable[Any]:
        return [{"content": "", **_final(self.model, result)}]


@router.post("/infill", responses=streamed("text/event-stream", "The middle; with `stream`: an event per token"))
async def infill(body: InfillRequest, http: Request, service: Service):
    """The middle between `input_prefix` + `prompt` and `input_suffix`."""
    model = body.model or service.info.name
    if body.stream:
        return await stream(http, service, lambda: [body.generation_request()], InfillEvents(model))
    (result,) = await complete(http, service, lambda: [body.generation_request()])
    return {"content": result.text, **_final(model, result)}
