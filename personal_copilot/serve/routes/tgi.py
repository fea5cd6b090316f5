"""text-generation-inference: `POST /generate` (an object, which llm-ls's `tgi` backend needs), `POST /` (a list, as
the hosted Inference API answers, or the SSE stream when the body says `"stream": true`: huggingface_hub's
InferenceClient posts there), `POST /generate_stream` (SSE, one event per token, the last with `generated_text`) and
`GET /info`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

import personal_copilot
from personal_copilot.serve.errors import TgiError, error_responses
from personal_copilot.serve.generation import GenerationResult, TokenEvent
from personal_copilot.serve.protocol import (
    TgiDetails,
    TgiInfo,
    TgiRequest,
    TgiResponse,
    TgiToken,
    tgi_finish_reason,
)
from personal_copilot.serve.routes.common import (
    EventStreamResponse,
    Service,
    StreamFormat,
    complete,
    stream,
    streamed,
)

router = APIRouter(tags=["text-generation-inference"], responses=error_responses(TgiError))
EVENTS = "Server-sent events: one per generated token; the last carries `generated_text` and `details`"


def _token(event: TokenEvent) -> TgiToken:
    return TgiToken(id=event.id, text=event.text, logprob=event.logprob, special=event.special)


def _response(body: TgiRequest, result: GenerationResult) -> TgiResponse:
    text = body.inputs + result.text if body.parameters.return_full_text else result.text
    details = None
    if body.parameters.details:
        details = TgiDetails(
            finish_reason=tgi_finish_reason(result.finish_reason),
            generated_tokens=result.generated_tokens,
            seed=result.seed,
            tokens=[_token(event) for event in result.tokens],
        )
    return TgiResponse(generated_text=text, details=details)


class TgiEvents(StreamFormat):
    """An event per token, held back one token so that the last token's event also carries `generated_text` and
    `details`."""

    def __init__(self, body: TgiRequest) -> None:
        self.body = body
        self.last: dict[str, Any] | None = None

    def token(self, index: int, event: TokenEvent) -> Iterable[Any]:
        previous = self.last
        number = previous["index"] + 1 if previous else 1
        self.last = {"index": number, "token": _token(event).model_dump(), "top_tokens": None}
        self.last |= {"generated_text": None, "details": None}
        return [previous] if previous else []

    def finished(self, index: int, result: GenerationResult) -> Iterable[Any]:
        last = self.last or {"index": 0, "token": None, "top_tokens": None}
        last["generated_text"] = _response(self.body, result).generated_text
        last["details"] = {
            "finish_reason": tgi_finish_reason(result.finish_reason),
            "generated_tokens": result.generated_tokens,
            "seed": result.seed,
            "input_length": result.prompt_tokens,
        }
        return [last]


async def _stream(body: TgiRequest, http: Request, service: Service) -> StreamingResponse:
    return await stream(http, service, lambda: [body.generation_request(service.info.max_new_tokens)], TgiEvents(body))


async def _generate(body: TgiRequest, http: Request, service: Service) -> TgiResponse:
    (result,) = await complete(http, service, lambda: [body.generation_request(service.info.max_new_tokens)])
    return _response(body, result)


@router.post("/generate", response_model=TgiResponse, response_model_exclude_none=True)
async def generate(body: TgiRequest, http: Request, service: Service) -> TgiResponse:
    """The completion as an object `{"generated_text": …}` (`details` when asked)."""
    return await _generate(body, http, service)


@router.post(
    "/generate_stream",
    response_class=EventStreamResponse,
    responses=error_responses(TgiError, by_reference=True) | streamed("text/event-stream", EVENTS),
)
async def generate_stream(body: TgiRequest, http: Request, service: Service) -> StreamingResponse:
    """Server-sent events: one per generated token; the last carries `generated_text` and `details`."""
    return await _stream(body, http, service)


@router.post(
    "/",
    response_model=list[TgiResponse],
    response_model_exclude_none=True,
    responses=streamed("text/event-stream", f"A list `[{{generated_text}}]`; with `stream`: {EVENTS}"),
)
async def compat_generate(body: TgiRequest, http: Request, service: Service):
    """The Inference API shape: a list `[{"generated_text": …}]`, or the SSE stream of /generate_stream when the
    body says `"stream": true`."""
    if body.stream:
        return await _stream(body, http, service)
    return [await _generate(body, http, service)]


@router.get("/info", response_model=TgiInfo)
async def info(service: Service) -> TgiInfo:
    """The model, its limits, its adapters and its FIM tokens."""
    model = service.info
    limits = service.scheduler
    return TgiInfo(
        model_id=model.name,
        model_dtype=model.dtype,
        model_device_type=model.device,
        max_concurrent_requests=limits.max_pending,
        max_input_tokens=model.max_input_tokens,
        max_input_length=model.max_input_tokens,
        max_total_tokens=model.max_total_tokens,
        max_batch_size=limits.max_batch_size,
        version=personal_copilot.__version__,
        base_model=model.base_model,
        adapters=list(model.adapters),
        fim=None if model.fim is None else asdict(model.fim),
    )
