"""The engine behind `pcopilot serve --engine URL`: an OpenAI-compatible inference engine (vLLM, SGLang, llama.cpp's
server, another `pcopilot serve`) generates; this process keeps every route, the API key and the limits, and builds
the prompts itself. Knows httpx, never FastAPI; loads no weights.

What stays here and what goes to the engine:
- here: the tokenizer of `--model` (only it and the model's config are loaded), so that prompts are built, counted
  and cut exactly as the in-process engine does (FIM from the family's sentinels, `--max_input_tokens`, TGI
  `truncate`, chat templates); stop strings and the FIM block rule are applied to the text the engine returns.
- the engine: the prompt as text (`POST /v1/completions`, streamed or not), the engine's model or LoRA name for the
  adapter asked for, max_tokens, temperature / top_p / seed (and top_k, penalties when set), the request's stop
  strings and the family's end-of-text and stop tokens (engines also stop at their own end-of-generation tokens).
  The engine re-tokenizes the text; special-token strings in it (the FIM sentinels) are special tokens for vLLM and
  llama.cpp alike. Token ids and log-probabilities are not forwarded (TGI's token details show id -1, logprob 0),
  and streamed completions count a token per streamed piece unless the engine reports its usage.

Engine errors (and a stream that breaks off) become 502, time-outs 504, in each protocol's error shape; the
connection pool (`httpx.AsyncClient`) is kept alive between requests.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx

from personal_copilot.dataset import FimEncoder, detect_family
from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import fim_layout
from personal_copilot.modeling import context_length, load_tokenizer
from personal_copilot.serve.batching import GenerationFailed
from personal_copilot.serve.completion_text import CompletionText, FimBoundary
from personal_copilot.serve.config import ServeConfig
from personal_copilot.serve.generation import (
    FinishReason,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    PreparedRequest,
    TokenEvent,
)
from personal_copilot.serve.model_source import check_adapter, resolve_model, served_names
from personal_copilot.serve.prompts import PromptBuilder, chat_renderer, prepare_request, serving_limits

logger = logging.getLogger("personal_copilot.serve")
ENGINE_API_KEY_ENV = "PCOPILOT_ENGINE_API_KEY"
MAX_ENGINE_STOPS = 16
"""Most stop strings sent (the request's first; the rest are still cut here)."""
NO_TOKEN_ID = -1
"""The id of streamed token events: the engine's text comes without its token ids."""


class RemoteEngine:
    """Forwards prepared requests to an OpenAI-compatible engine as plain-prompt completions.

    Args:
        url: the engine's base URL (`/v1/completions` is appended).
        info: what the server says about its model.
        builder: builds the prompt ids of requests (the front's tokenizer).
        tokenizer: decodes the built prompt back to the text the engine gets.
        engine_models: {served name: engine model name} where they differ.
        stop_texts: the family's end-of-text and stop tokens as text (sent as stop strings, and cut here too).
        timeout: seconds to wait for the engine's next bytes.
        api_key: sent to the engine as a bearer token.
        fim_stop_at_block_end: cut FIM completions where they leave the cursor's block.
    """

    def __init__(
        self,
        url: str,
        info: ModelInfo,
        builder: PromptBuilder,
        tokenizer: Any,
        engine_models: dict[str, str] | None = None,
        stop_texts: tuple[str, ...] = (),
        timeout: float = 60.0,
        api_key: str | None = None,
        fim_stop_at_block_end: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.info = info
        self.builder = builder
        self.tokenizer = tokenizer
        self.engine_models = engine_models or {}
        self.stop_texts = stop_texts
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.fim_stop_at_block_end = fim_stop_at_block_end
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def load(cls, config: ServeConfig) -> RemoteEngine:
        """The front for `--engine`: `--model`'s tokenizer and config (never its weights), its adapter names and
        `--engine_models`."""
        if config.engine is None:
            raise PcopilotError("RemoteEngine.load needs --engine URL")
        from transformers import AutoConfig

        source = resolve_model(config.model)
        tokenizer = load_tokenizer(source.tokenizer)
        if config.chat_template is not None:
            tokenizer.chat_template = config.chat_template.read_text(encoding="utf-8")
        family = config.family or source.family or detect_family(tokenizer.get_vocab())
        encoder = FimEncoder(tokenizer, family, require_fim=family is not None)
        model_config = AutoConfig.from_pretrained(source.base)
        context = context_length(model_config)
        if context is None:
            raise PcopilotError(f"cannot tell the context length of {source.base}; set --max_input_tokens")
        max_input, max_new = serving_limits(context, config.max_new_tokens, config.max_input_tokens)
        render_chat = chat_renderer(tokenizer)
        builder = PromptBuilder(
            encoder, max_input, config.prompt_overflow, fim_layout(source.base, config.fim_layout), render_chat
        )
        names = served_names(source, config.name)
        name, base = names.default, names.base
        adapters = [names.adapter] if names.adapter else []
        for adapter, path in config.adapter_paths().items():
            if adapter in adapters or adapter in (name, base):
                raise PcopilotError(f"--adapters {adapter}={path}: the name {adapter!r} is taken; choose another")
            check_adapter(adapter, path)
            adapters.append(adapter)
        engine_models = config.engine_model_names()
        adapters += [n for n in engine_models if n not in (name, base, *adapters)]
        info = ModelInfo(
            name=name,
            base_model=source.base,
            tokenizer=source.tokenizer,
            base_name=base,
            adapters=tuple(adapters),
            default_adapter=names.adapter,
            max_input_tokens=max_input,
            max_new_tokens=max_new,
            max_total_tokens=context,
            fim=builder.fim,
            chat=render_chat is not None,
            model_type=model_config.model_type,
            dtype=str(getattr(model_config, "dtype", None) or "unknown").removeprefix("torch."),
            device=f"engine {config.engine}",
        )
        stops = builder.fim.stop if builder.fim else tuple(filter(None, [tokenizer.eos_token]))
        api_key = config.engine_api_key or os.environ.get(ENGINE_API_KEY_ENV) or None
        return cls(
            config.engine,
            info,
            builder,
            tokenizer,
            engine_models,
            tuple(dict.fromkeys(stops)),
            config.engine_timeout,
            api_key,
            config.fim_stop_at_block_end,
        )

    def prepare(self, request: GenerationRequest) -> PreparedRequest:
        prepared = prepare_request(self.info, self.builder, request)
        ids = prepared.prompt_ids
        text = self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return replace(prepared, prompt_text=text)

    def engine_model(self, adapter: str | None) -> str:
        """The engine's name for an adapter (None: the bare base)."""
        served = adapter or self.info.base_name
        return self.engine_models.get(served, served)

    def completion_body(self, prepared: PreparedRequest, stream: bool, seed: int | None) -> dict[str, Any]:
        """The engine's /v1/completions request for a prepared request."""
        request, sampling = prepared.request, prepared.request.sampling
        body: dict[str, Any] = {
            "model": self.engine_model(prepared.adapter),
            "prompt": prepared.prompt_text,
            "max_tokens": prepared.max_new_tokens,
            "stream": stream,
            "temperature": sampling.temperature if sampling.do_sample else 0.0,
            "top_p": sampling.top_p if sampling.do_sample else 1.0,
        }
        stop = list(dict.fromkeys((*request.stop, *self.stop_texts)))[:MAX_ENGINE_STOPS]
        if stop:
            body["stop"] = stop
        if seed is not None:
            body["seed"] = seed
        if sampling.do_sample and sampling.top_k:
            body["top_k"] = sampling.top_k  # vLLM, SGLang and llama.cpp take it beside OpenAI's fields
        if sampling.frequency_penalty:
            body["frequency_penalty"] = sampling.frequency_penalty
        if sampling.presence_penalty:
            body["presence_penalty"] = sampling.presence_penalty
        if sampling.repetition_penalty != 1.0:
            body["repetition_penalty"] = sampling.repetition_penalty  # vLLM's and SGLang's name
        return body

    async def generate_one(
        self, prepared: PreparedRequest, stream: bool
    ) -> AsyncIterator[TokenEvent | GenerationResult]:
        sampling = prepared.request.sampling
        seed = (sampling.seed if sampling.seed is not None else secrets.randbits(31)) if sampling.do_sample else None
        body = self.completion_body(prepared, stream, seed)
        fim = None
        if prepared.suffix is not None:
            fim = FimBoundary.around(prepared.prefix or "", prepared.suffix, self.fim_stop_at_block_end)
        completion = CompletionText((*prepared.request.stop, *self.stop_texts), fim)
        try:
            if stream:
                async for item in self._streamed(prepared, body, completion, seed):
                    yield item
            else:
                yield await self._answered(prepared, body, completion, seed)
        except httpx.TimeoutException as error:
            raise GenerationFailed(
                f"the engine at {self.url} did not answer within {self.timeout:g} s (--engine_timeout): "
                f"{type(error).__name__}",
                504,
            ) from error
        except httpx.ConnectError as error:
            raise GenerationFailed(f"cannot reach the engine at {self.url}: {error}; is it running?", 502) from error
        except httpx.HTTPError as error:
            raise GenerationFailed(
                f"the engine at {self.url} broke the connection: {type(error).__name__}: {error}", 502
            ) from error

    async def _answered(
        self, prepared: PreparedRequest, body: dict[str, Any], completion: CompletionText, seed: int | None
    ) -> GenerationResult:
        response = await self.client.post("/v1/completions", json=body)
        if response.status_code != 200:
            raise self._refused(response.status_code, response.text)
        data = response.json()
        choice = (data.get("choices") or [{}])[0]
        completion.update(choice.get("text") or "", final=True)
        usage = data.get("usage") or {}
        return self._result(prepared, completion, choice, usage.get("completion_tokens") or 0, seed, [])

    async def _streamed(
        self, prepared: PreparedRequest, body: dict[str, Any], completion: CompletionText, seed: int | None
    ) -> AsyncIterator[TokenEvent | GenerationResult]:
        raw, pieces, counted, events, last_choice, finished = "", 0, None, [], {}, False
        async with self.client.stream("POST", "/v1/completions", json=body) as response:
            if response.status_code != 200:
                raise self._refused(response.status_code, (await response.aread()).decode("utf-8", "replace"))
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line.removeprefix("data:").strip()
                if payload == "[DONE]":
                    finished = True
                    break
                chunk = json.loads(payload)
                if "error" in chunk:
                    raise self._refused(502, json.dumps(chunk["error"]))
                counted = (chunk.get("usage") or {}).get("completion_tokens") or counted
                for choice in chunk.get("choices") or []:
                    text = choice.get("text") or ""
                    raw += text
                    pieces += 1 if text else 0  # engines stream about one token per chunk
                    delta = completion.update(raw)
                    if delta:
                        events.append(TokenEvent(NO_TOKEN_ID, delta, 0.0))
                        yield events[-1]
                    if choice.get("finish_reason"):
                        last_choice, finished = choice, True
                if completion.finish_reason is not None:
                    finished = True
                    break  # leaving the stream closes the connection: the engine stops generating
        if not finished:
            raise GenerationFailed(f"the engine at {self.url} ended the stream before the completion finished", 502)
        delta = completion.update(raw, final=True)
        if delta:
            events.append(TokenEvent(NO_TOKEN_ID, delta, 0.0))
            yield events[-1]
        yield self._result(prepared, completion, last_choice, counted or pieces, seed, events)

    def _result(
        self,
        prepared: PreparedRequest,
        completion: CompletionText,
        choice: dict[str, Any],
        generated: int,
        seed: int | None,
        events: list[TokenEvent],
    ) -> GenerationResult:
        return GenerationResult(
            text=completion.text,
            finish_reason=completion.finish_reason or engine_finish_reason(choice),
            prompt_tokens=len(prepared.prompt_ids),
            generated_tokens=generated,
            seed=seed,
            tokens=events,
            truncated_tokens=prepared.truncated_tokens,
            adapter=prepared.adapter,
        )

    def _refused(self, status: int, text: str) -> GenerationFailed:
        message = text.strip()[:500] or "(no body)"
        return GenerationFailed(f"the engine at {self.url} answered {status}: {message}", 502)

    @property
    def client(self) -> httpx.AsyncClient:
        """One pool of kept-alive connections to the engine (made on the event loop that first uses it)."""
        if self._client is None:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
            timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))
            self._client = httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=timeout, limits=limits)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def engine_finish_reason(choice: dict[str, Any]) -> FinishReason:
    """Our reason for an engine's choice: `length`, else a stop string (vLLM names it in `stop_reason`) or a stop
    token."""
    if choice.get("finish_reason") == "length":
        return "length"
    return "stop_sequence" if isinstance(choice.get("stop_reason"), str) else "eos_token"
