"""OpenAI: `POST /v1/completions` (with `suffix`: the server builds the family's FIM prompt, which vLLM and TGI
refuse to do), `POST /v1/chat/completions` and `GET /v1/models`; streams are SSE chunks ending with `data: [DONE]`.
The `model` field picks the adapter."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import APIRouter, Request

from personal_copilot.serve.errors import OpenAIError, error_responses
from personal_copilot.serve.generation import GenerationResult, TokenEvent
from personal_copilot.serve.protocol import ChatCompletionRequest, CompletionRequest, openai_finish_reason
from personal_copilot.serve.routes.common import Service, StreamFormat, complete, stream, streamed, unix_time

router = APIRouter(prefix="/v1", tags=["OpenAI"], responses=error_responses(OpenAIError))
DONE = "[DONE]"
CHUNKS = "The completion; with `stream`: server-sent chunks ending with `data: [DONE]`"


def _usage(results: Sequence[GenerationResult], choices_per_prompt: int) -> dict[str, int]:
    prompt = sum(r.prompt_tokens for r in results[::choices_per_prompt])
    completion = sum(r.generated_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class Chunks(StreamFormat):
    """The chunks of a streamed completion (or, with `chat`, chat completion): each choice's opening chunk (the echoed
    prompt, or the assistant's role), a chunk per token, a finishing chunk per choice, the usage when asked, then
    `[DONE]` (after an error too)."""

    def __init__(self, body: CompletionRequest | ChatCompletionRequest, model: str, chat: bool) -> None:
        self.body = body
        self.chat = chat
        object_name, id_prefix = ("chat.completion.chunk", "chatcmpl") if chat else ("text_completion", "cmpl")
        self.head = {"id": f"{id_prefix}-{uuid.uuid4().hex}", "object": object_name, "created": unix_time()}
        self.head["model"] = model
        self.started: set[int] = set()

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {**self.head, "choices": choices, **extra}

    def _choice(self, index: int, **fields: Any) -> dict[str, Any]:
        empty = {"delta": {}} if self.chat else {"text": ""}
        return {"index": index, **empty, "logprobs": None, "finish_reason": None} | fields

    def _opening(self, index: int) -> list[dict[str, Any]]:
        if index in self.started:
            return []
        self.started.add(index)
        if self.chat:
            return [self.chunk([self._choice(index, delta={"role": "assistant", "content": ""})])]
        if isinstance(self.body, CompletionRequest) and self.body.echo:
            return [self.chunk([self._choice(index, text=self.body.prompts[index // self.body.n])])]
        return []

    def token(self, index: int, event: TokenEvent) -> Iterable[Any]:
        chunks = self._opening(index)
        if event.text:
            text = {"delta": {"content": event.text}} if self.chat else {"text": event.text}
            chunks.append(self.chunk([self._choice(index, **text)]))
        return chunks

    def finished(self, index: int, result: GenerationResult) -> Iterable[Any]:
        finish = openai_finish_reason(result.finish_reason)
        return [*self._opening(index), self.chunk([self._choice(index, finish_reason=finish)])]

    def end(self, results: Sequence[GenerationResult]) -> Iterable[Any]:
        return [self.chunk([], usage=_usage(results, self.body.n))] if self.body.include_usage else []

    def closing(self) -> Iterable[Any]:
        return [DONE]


@router.post("/completions", responses=streamed("text/event-stream", CHUNKS))
async def completions(body: CompletionRequest, http: Request, service: Service):
    """Text completion; with `suffix`, fill-in-the-middle with the served model's FIM sentinels. Several prompts
    and `n` choices each are generated in one batch (at most --max_rows_per_request of them)."""
    model = body.model or service.info.name
    if body.stream:
        chunks = Chunks(body, model, chat=False)
        return await stream(http, service, body.generation_requests, chunks, body.rows, "prompt")
    results = await complete(http, service, body.generation_requests, body.rows, "prompt")
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


@router.post("/chat/completions", responses=streamed("text/event-stream", CHUNKS))
async def chat_completions(body: ChatCompletionRequest, http: Request, service: Service):
    """Chat, rendered with the tokenizer's chat template (or --chat_template)."""
    model = body.model or service.info.name
    if body.stream:
        return await stream(http, service, body.generation_requests, Chunks(body, model, chat=True), body.rows)
    results = await complete(http, service, body.generation_requests, body.rows)
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
