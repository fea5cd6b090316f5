"""Ollama: `POST /api/generate` (`suffix` builds the FIM prompt; NDJSON stream by default), `POST /api/chat`,
`GET /api/tags` and `POST /api/show`. Continue decides that a model can fill in the middle when the template that
/api/show returns mentions `.Suffix`, and reads `num_ctx` and `stop` from its parameters: both come from the family."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from personal_copilot.serve.errors import OllamaError, error_responses
from personal_copilot.serve.generation import GenerationRequest, GenerationResult, ModelInfo, TokenEvent
from personal_copilot.serve.protocol import OllamaChatRequest, OllamaGenerateRequest, OllamaShowRequest
from personal_copilot.serve.routes.common import JsonBodyRoute, NdjsonFormat, Service, complete, stream, streamed

router = APIRouter(prefix="/api", tags=["Ollama"], route_class=JsonBodyRoute, responses=error_responses(OllamaError))
LINES = 'NDJSON: a line per token, then the final line with the counts; with `"stream": false`: one object'


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _final(model: str, result: GenerationResult) -> dict[str, Any]:
    nanoseconds = int(result.seconds * 1e9)
    return {
        "model": model,
        "created_at": _now(),
        "done": True,
        "done_reason": "length" if result.finish_reason in ("length", "cancelled") else "stop",
        "total_duration": nanoseconds,
        "load_duration": 0,
        "prompt_eval_count": result.prompt_tokens,
        "prompt_eval_duration": 0,
        "eval_count": result.generated_tokens,
        "eval_duration": nanoseconds,
    }


def _content(text: str, chat: bool) -> dict[str, Any]:
    """What a line carries: the chat `message`, or the generated `response`."""
    return {"message": {"role": "assistant", "content": text}} if chat else {"response": text}


def _last(model: str, result: GenerationResult, text: str, chat: bool) -> dict[str, Any]:
    """The final object: the counts, and /api/generate's (empty) `context`."""
    return {**_final(model, result), **_content(text, chat)} | ({} if chat else {"context": []})


class Lines(NdjsonFormat):
    """NDJSON: a line per token, then the final line with the counts."""

    def __init__(self, model: str, chat: bool) -> None:
        self.model = model
        self.chat = chat

    def token(self, index: int, event: TokenEvent) -> Iterable[Any]:
        if not event.text:
            return []
        return [{"model": self.model, "created_at": _now(), **_content(event.text, self.chat), "done": False}]

    def finished(self, index: int, result: GenerationResult) -> Iterable[Any]:
        return [_last(self.model, result, "", self.chat)]


async def _respond(
    http: Request, service: Service, requests: Sequence[GenerationRequest], model: str, streaming: bool, chat: bool
):
    if streaming:
        return await stream(http, service, lambda: requests, Lines(model, chat))
    (result,) = await complete(http, service, lambda: requests)
    return _last(model, result, result.text, chat)


@router.post("/generate", responses=streamed("application/x-ndjson", LINES))
async def generate(body: OllamaGenerateRequest, http: Request, service: Service):
    """Completion of `prompt`, or fill-in-the-middle between `prompt` and `suffix`. An empty prompt without suffix
    only checks that the model is there (Ollama's way to load a model). Any Content-Type is read as JSON."""
    if not body.prompt and not body.suffix:
        service.info.adapter_for(body.model)  # 404 for an unknown model
        return {"model": body.model, "created_at": _now(), "response": "", "done": True, "done_reason": "load"}
    return await _respond(http, service, [body.generation_request()], body.model, body.stream, chat=False)


@router.post("/chat", responses=streamed("application/x-ndjson", LINES))
async def chat(body: OllamaChatRequest, http: Request, service: Service):
    """Chat, rendered with the tokenizer's chat template (or --chat_template). Any Content-Type is read as JSON."""
    return await _respond(http, service, [body.generation_request()], body.model, body.stream, chat=True)


def _details(info: ModelInfo) -> dict[str, Any]:
    family = info.fim.family if info.fim else info.model_type
    return {
        "format": "safetensors",
        "family": family,
        "families": [family],
        "parameter_size": f"{info.parameters / 1e6:.1f}M",
        "quantization_level": info.dtype.upper(),
    }


def _template(info: ModelInfo) -> str:
    if info.fim is None:
        return "{{ .Prompt }}"
    fim = info.fim
    return (
        f"{{{{- if .Suffix }}}}{fim.prefix}{{{{ .Prompt }}}}{fim.suffix}{{{{ .Suffix }}}}{fim.middle}"
        "{{- else }}{{ .Prompt }}{{- end }}"
    )


@router.get("/tags")
async def tags(service: Service) -> dict[str, Any]:
    """Every served name: the default, the base model and each adapter."""
    info = service.info
    entry = {"modified_at": _now(), "size": info.parameters, "digest": "", "details": _details(info)}
    return {"models": [{"name": name, "model": name, **entry} for name in info.names]}


@router.post("/show")
async def show(body: OllamaShowRequest, service: Service) -> dict[str, Any]:
    """Template (with `.Suffix` when the model has FIM tokens), parameters (num_ctx, stop) and capabilities."""
    info = service.info
    info.adapter_for(body.model or body.name)  # 404 for an unknown model
    stops = info.fim.stop if info.fim else ()
    parameters = [f"num_ctx {info.max_input_tokens}", *(f"stop {json.dumps(stop)}" for stop in stops)]
    template = _template(info)
    return {
        "modelfile": f"FROM {info.base_model}\nTEMPLATE {template!r}\n"
        + "".join(f"PARAMETER {p}\n" for p in parameters),
        "parameters": "\n".join(parameters),
        "template": template,
        "details": _details(info),
        "model_info": {"general.architecture": info.model_type, "general.parameter_count": info.parameters},
        "capabilities": ["completion", "insert"] if info.fim else ["completion"],
    }
