"""OpenAI: `POST /v1/completions` (with `suffix`: the server builds the family's FIM prompt, which vLLM and TGI
refuse to do), `POST /v1/chat/completions` and `GET /v1/models`; streams are SSE chunks ending with `data: [DONE]`.
The `model` field picks the adapter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, Request

from personal_copilot.serve.batching import GenerationFailed, Ticket
from personal_copilot.serve.generation import GenerationResult, TokenEvent
from personal_copilot.serve.protocol import ChatCompletionRequest, CompletionRequest, openai_finish_reason
from personal_copilot.serve.routes.common import Service, complete, sse, sse_response, stream, unix_time

router = APIRouter(prefix="/v1", tags=["OpenAI"])
DONE = "[DONE]"


def _usage(results: Sequence[GenerationResult], choices_per_prompt: int) -> dict[str, int]:
    prompt = sum(r.prompt_tokens for r in results[::choices_per_prompt])
    completion = sum(r.generated_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _stream_error(error: GenerationFailed) -> str:
    return sse({"error": {"message": str(error), "type": "server_error", "param": None, "code": 500}})


class _Chunks:
    """The SSE chunks of one streamed response (completion or chat)."""

    def __init__(self, object_name: str, id_prefix: str, model: str) -> None:
        self.head = {"id": f"{id_prefix}-{uuid.uuid4().hex}", "object": object_name, "created": unix_time()}
        self.head["model"] = model

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        return sse({**self.head, "choices": choices, **extra})


async def _completion_chunks(
    http: Request, tickets: list[Ticket], body: CompletionRequest, model: str
) -> AsyncIterator[str]:
    chunks = _Chunks("text_completion", "cmpl", model)
    results: list[GenerationResult] = []
    prompts = body.prompts
    try:
        started: set[int] = set()
        async for index, item in stream(http, tickets):
            choice = {"index": index, "text": "", "logprobs": None, "finish_reason": None}
            if body.echo and index not in started:
                started.add(index)
                yield chunks.chunk([choice | {"text": prompts[index // body.n]}])
            if isinstance(item, TokenEvent):
                if item.text:
                    yield chunks.chunk([choice | {"text": item.text}])
            else:
                results.append(item)
                yield chunks.chunk([choice | {"finish_reason": openai_finish_reason(item.finish_reason)}])
        if body.include_usage:
            yield chunks.chunk([], usage=_usage(results, body.n))
    except GenerationFailed as error:
        yield _stream_error(error)
    yield sse(DONE)


@router.post("/completions")
async def completions(body: CompletionRequest, http: Request, service: Service):
    """Text completion; with `suffix`, fill-in-the-middle with the served model's FIM sentinels. Several prompts
    and `n` choices each are generated in one batch."""
    model = body.model or service.info.name
    if body.stream:
        tickets = service.start(body.generation_requests(), stream=True)
        return sse_response(_completion_chunks(http, tickets, body, model))
    results = await complete(http, service, body.generation_requests())
    prompts = body.prompts
    choices = [
        {
            "index": index,
            "text": (prompts[index // body.n] if body.echo else "") + result.text,
            "logprobs": None,
            "finish_reason": openai_finish_reason(result.finish_reason),
        }
        for index, result in enumerate(results)
    ]
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": unix_time(),
        "model": model,
        "choices": choices,
        "usage": _usage(results, body.n),
    }


async def _chat_chunks(http: Request, tickets: list[Ticket], body: ChatCompletionRequest, model: str):
    chunks = _Chunks("chat.completion.chunk", "chatcmpl", model)
    results: list[GenerationResult] = []
    try:
        started: set[int] = set()
        async for index, item in stream(http, tickets):
            choice = {"index": index, "delta": {}, "logprobs": None, "finish_reason": None}
            if index not in started:
                started.add(index)
                yield chunks.chunk([choice | {"delta": {"role": "assistant", "content": ""}}])
            if isinstance(item, TokenEvent):
                if item.text:
                    yield chunks.chunk([choice | {"delta": {"content": item.text}}])
            else:
                results.append(item)
                yield chunks.chunk([choice | {"finish_reason": openai_finish_reason(item.finish_reason)}])
        if body.include_usage:
            yield chunks.chunk([], usage=_usage(results, body.n))
    except GenerationFailed as error:
        yield _stream_error(error)
    yield sse(DONE)


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, http: Request, service: Service):
    """Chat, rendered with the tokenizer's chat template (or --chat_template)."""
    model = body.model or service.info.name
    if body.stream:
        tickets = service.start(body.generation_requests(), stream=True)
        return sse_response(_chat_chunks(http, tickets, body, model))
    results = await complete(http, service, body.generation_requests())
    choices = [
        {
            "index": index,
            "message": {"role": "assistant", "content": result.text},
            "logprobs": None,
            "finish_reason": openai_finish_reason(result.finish_reason),
        }
        for index, result in enumerate(results)
    ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": unix_time(),
        "model": model,
        "choices": choices,
        "usage": _usage(results, body.n),
    }


@router.get("/models")
async def models(service: Service) -> dict[str, Any]:
    """The served name, the base model and each adapter (`parent`: the base they apply to)."""
    info = service.info
    created = unix_time()
    entries = []
    for name in info.names:
        is_base = name == info.base_name or (name == info.name and info.default_adapter is None)
        parent = None if is_base else info.base_name
        entries.append(
            {"id": name, "object": "model", "created": created, "owned_by": "personal-copilot", "parent": parent}
            | {"root": info.base_model}
        )
    return {"object": "list", "data": entries}
