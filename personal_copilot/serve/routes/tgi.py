"""text-generation-inference: `POST /generate` (an object, which llm-ls's `tgi` backend needs), `POST /` (a list, as
the hosted Inference API answers, or the SSE stream when the body says `"stream": true`: huggingface_hub's
InferenceClient posts there), `POST /generate_stream` (SSE, one event per token, the last with `generated_text`) and
`GET /info`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

import personal_copilot
from personal_copilot.serve.batching import GenerationFailed, Ticket
from personal_copilot.serve.generation import GenerationResult, TokenEvent
from personal_copilot.serve.protocol import (
    TgiDetails,
    TgiInfo,
    TgiRequest,
    TgiResponse,
    TgiToken,
    tgi_finish_reason,
)
from personal_copilot.serve.routes.common import Service, complete, sse, sse_response, stream

router = APIRouter(tags=["text-generation-inference"])


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


async def _token_events(http: Request, tickets: list[Ticket], body: TgiRequest) -> AsyncIterator[str]:
    """SSE: an event per token; the last token's event also carries `generated_text` and `details`."""
    last: dict | None = None
    try:
        async for _, item in stream(http, tickets):
            if isinstance(item, TokenEvent):
                if last is not None:
                    yield sse(last)
                index = last["index"] + 1 if last else 1
                last = {"index": index, "token": _token(item).model_dump(), "generated_text": None, "details": None}
                last["top_tokens"] = None
            else:
                last = last or {"index": 0, "token": None, "top_tokens": None}
                last["generated_text"] = _response(body, item).generated_text
                last["details"] = {
                    "finish_reason": tgi_finish_reason(item.finish_reason),
                    "generated_tokens": item.generated_tokens,
                    "seed": item.seed,
                    "input_length": item.prompt_tokens,
                }
                yield sse(last)
    except GenerationFailed as error:
        yield sse({"error": str(error), "error_type": "generation"})


def _stream_response(http: Request, service: Service, body: TgiRequest) -> StreamingResponse:
    tickets = service.start([body.generation_request()], stream=True)
    return sse_response(_token_events(http, tickets, body))


@router.post("/generate", response_model=TgiResponse, response_model_exclude_none=True)
async def generate(body: TgiRequest, http: Request, service: Service) -> TgiResponse:
    """The completion as an object `{"generated_text": …}` (`details` when asked)."""
    (result,) = await complete(http, service, [body.generation_request()])
    return _response(body, result)


@router.post("/generate_stream")
async def generate_stream(body: TgiRequest, http: Request, service: Service) -> StreamingResponse:
    """Server-sent events: one per generated token; the last carries `generated_text` and `details`."""
    return _stream_response(http, service, body)


@router.post("/", response_model=list[TgiResponse], response_model_exclude_none=True)
async def compat_generate(body: TgiRequest, http: Request, service: Service):
    """The Inference API shape: a list `[{"generated_text": …}]`, or the SSE stream of /generate_stream when the
    body says `"stream": true`."""
    if body.stream:
        return _stream_response(http, service, body)
    (result,) = await complete(http, service, [body.generation_request()])
    return [_response(body, result)]


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
