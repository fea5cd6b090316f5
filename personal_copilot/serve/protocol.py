"""Wire models of the four protocols, field by field as their clients send them, and their mapping to a
`GenerationRequest`: text-generation-inference (`/generate`, `/generate_stream`, `/`), OpenAI (`/v1/completions`
with `suffix`, `/v1/chat/completions`), Ollama (`/api/generate`, `/api/chat`) and llama.cpp (`/infill`).

Unknown fields are errors (422 naming the field). Fields of a protocol that this server does not implement are
accepted at their neutral value only (TGI's `best_of: 1`, OpenAI's `logprobs: null`, …) and are a 422 otherwise, so
nothing a client asks for is silently dropped. Fields that only tune a server's resources (Ollama's `num_ctx`,
`keep_alive`; llama.cpp's `cache_prompt`, `t_max_*`) are accepted and have no effect; docs/serve.md lists them.
Defaults follow each protocol: TGI 100 new tokens (at most the server's limit, as TGI caps it) and greedy unless a
sampling field is set; OpenAI temperature 1 (sampling; 0 is greedy) and 16 tokens for completions; Ollama and llama.cpp
temperature 0.8, top-k 40.

Every text must be valid Unicode (JSON can carry a lone UTF-16 surrogate such as `"\\ud800"`, which no tokenizer can
encode), numbers must be finite, and seeds must fit 64 bits: each is a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from personal_copilot.serve.generation import ContextFile, FinishReason, GenerationRequest, SamplingParams

MAX_STOP_STRINGS = 16
MAX_PROMPTS = 1024
"""Most prompts in one OpenAI request, checked before any is read (the server's --max_rows_per_request is lower)."""
TGI_MAX_NEW_TOKENS = 100
SEED_RANGE = 2**64


def _valid_unicode(text: str) -> str:
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"lone UTF-16 surrogate {text[error.start]!a} at character {error.start}: send valid Unicode text "
            "(surrogates only come in pairs, as the escape of one character)"
        ) from None
    return text


Text = Annotated[str, AfterValidator(_valid_unicode)]
"""A string of valid Unicode (no lone surrogate)."""
Seed = Annotated[int, Field(ge=-(SEED_RANGE // 2), lt=SEED_RANGE)]
"""A seed that fits 64 bits, signed or unsigned."""


def _seed(seed: int | None) -> int | None:
    """The seed as the sampler takes it (0 .. 2**64 - 1)."""
    return None if seed is None else seed % SEED_RANGE


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    NEUTRAL: ClassVar[dict[str, tuple[Any, ...]]] = {}
    """Fields this server does not implement, accepted only at one of these values (or empty)."""

    @model_validator(mode="after")
    def _reject_unsupported(self):
        for name, neutral in self.NEUTRAL.items():
            value = getattr(self, name)
            if value in neutral or (isinstance(value, list | dict | str) and not value):
                continue
            raise ValueError(f"{name}={value!r} is not supported by this server (leave it out)")
        return self


def _stops(stop: Text | list[Text] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


# --- text-generation-inference ----------------------------------------------------------------------------------


class TgiParameters(WireModel):
    max_new_tokens: int | None = Field(None, ge=1)
    """Null or absent: 100, or the server's --max_new_tokens when that is lower (as TGI caps its default)."""
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    do_sample: bool | None = False
    stop: list[Text] | None = Field(None, max_length=MAX_STOP_STRINGS)
    seed: int | None = Field(None, ge=0, lt=SEED_RANGE)
    return_full_text: bool | None = False
    """Prepend the inputs to the generated text (default false: editors want the completion only)."""
    repetition_penalty: float | None = Field(None, gt=0)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    adapter_id: Text | None = None
    """Adapter (or served model) name; null: the default."""
    details: bool | None = False
    truncate: int | None = Field(None, ge=1)
    """Keep at most this many input tokens."""
    best_of: int | None = None
    decoder_input_details: bool | None = None
    typical_p: float | None = None
    watermark: bool | None = None
    top_n_tokens: int | None = None
    grammar: Any = None

    NEUTRAL = {
        "best_of": (None, 1),
        "decoder_input_details": (None, False),
        "typical_p": (None, 1.0),
        "watermark": (None, False),
        "top_n_tokens": (None, 0),
        "grammar": (None,),
    }


class TgiRequest(WireModel):
    inputs: Text
    parameters: TgiParameters = Field(default_factory=TgiParameters)
    stream: bool = False

    def generation_request(self, server_max_new_tokens: int) -> GenerationRequest:
        """The request; without `max_new_tokens`, TGI's default of 100 capped to `server_max_new_tokens`."""
        p = self.parameters
        sampling = SamplingParams.from_request(
            temperature=p.temperature,
            top_p=p.top_p,
            top_k=p.top_k,
            do_sample=bool(p.do_sample),
            repetition_penalty=p.repetition_penalty,
            frequency_penalty=p.frequency_penalty,
            seed=p.seed,
        )
        default = min(TGI_MAX_NEW_TOKENS, server_max_new_tokens)
        return GenerationRequest(
            prompt=self.inputs,
            model=p.adapter_id,
            max_new_tokens=default if p.max_new_tokens is None else p.max_new_tokens,
            stop=_stops(p.stop),
            sampling=sampling,
            truncate=p.truncate,
        )


class TgiToken(BaseModel):
    id: int
    text: str
    logprob: float
    special: bool


class TgiDetails(BaseModel):
    finish_reason: Literal["length", "eos_token", "stop_sequence"]
    generated_tokens: int
    seed: int | None = None
    """The sampler's seed (absent for greedy completions)."""
    prefill: list[TgiToken] = Field(default_factory=list)
    tokens: list[TgiToken] = Field(default_factory=list)


class TgiResponse(BaseModel):
    generated_text: str
    details: TgiDetails | None = None


class TgiInfo(BaseModel):
    model_id: str
    model_sha: str | None = None
    model_dtype: str
    model_device_type: str
    model_pipeline_tag: str = "text-generation"
    max_concurrent_requests: int
    max_best_of: int = 1
    max_stop_sequences: int = MAX_STOP_STRINGS
    max_input_tokens: int
    max_input_length: int
    """The old name of max_input_tokens, which Continue still reads."""
    max_total_tokens: int
    max_batch_size: int
    max_client_batch_size: int = 1
    validation_workers: int = 1
    router: str = "personal-copilot"
    version: str
    sha: str | None = None
    docker_label: str | None = None
    base_model: str
    adapters: list[str]
    fim: dict[str, Any] | None
    """FIM tokens of the family: prefix, suffix, middle, eos, stop, file_sep."""


def tgi_finish_reason(reason: FinishReason) -> Literal["length", "eos_token", "stop_sequence"]:
    return {"eos_token": "eos_token", "stop_sequence": "stop_sequence", "block_end": "stop_sequence"}.get(
        reason, "length"
    )


# --- OpenAI -----------------------------------------------------------------------------------------------------


def openai_finish_reason(reason: FinishReason) -> Literal["stop", "length"]:
    return "length" if reason in ("length", "cancelled") else "stop"


class StreamOptions(WireModel):
    include_usage: bool = False
    """End the stream with a chunk holding `usage`."""


class OpenAISampling(WireModel):
    """Fields that completions and chat share."""

    model: Text | None = None
    """Served name, base model name or adapter name."""
    temperature: float | None = Field(1.0, ge=0, le=2)
    top_p: float | None = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Text | list[Text] | None = Field(None, max_length=MAX_STOP_STRINGS)
    seed: Seed | None = None
    presence_penalty: float | None = Field(0.0, ge=-2, le=2)
    frequency_penalty: float | None = Field(0.0, ge=-2, le=2)
    user: Text | None = None
    """An end-user id; not used."""
    top_k: int | None = Field(None, ge=0)
    """Extension (vLLM): keep the k most likely tokens."""
    repetition_penalty: float | None = Field(None, gt=0)
    """Extension (vLLM, TGI): multiplicative penalty on repeated tokens."""
    logit_bias: dict[str, float] | None = None
    logprobs: Any = None

    def sampling(self, index: int) -> SamplingParams:
        """Sampling of the `index`-th choice (choices get consecutive seeds, so that they differ)."""
        temperature = 1.0 if self.temperature is None else self.temperature
        return SamplingParams.from_request(
            temperature=temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            do_sample=temperature > 0,
            repetition_penalty=self.repetition_penalty,
            frequency_penalty=self.frequency_penalty,
            presence_penalty=self.presence_penalty,
            seed=None if self.seed is None else _seed(self.seed + index),
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(OpenAISampling):
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=MAX_PROMPTS)]
    suffix: Text | None = None
    """Text after the cursor: the server builds the family's FIM prompt."""
    max_tokens: int | None = Field(16, ge=1)
    echo: bool = False
    """Prepend the prompt to the completion (never the suffix)."""
    best_of: int | None = None

    NEUTRAL = {"best_of": (None, 1), "logit_bias": (None,), "logprobs": (None, 0)}

    @field_validator("prompt", mode="before")
    @classmethod
    def _few_enough_prompts(cls, prompt: Any) -> Any:
        """Refuses a long list before reading its items (a 2 MB body holds half a million tiny prompts)."""
        if isinstance(prompt, list) and len(prompt) > MAX_PROMPTS:
            raise ValueError(f"{len(prompt)} prompts, over the limit of {MAX_PROMPTS}; send fewer")
        return prompt

    @property
    def rows(self) -> int:
        """Completions asked for: prompts × n (counted before any is built)."""
        return (1 if isinstance(self.prompt, str) else len(self.prompt)) * self.n

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def generation_requests(self) -> list[GenerationRequest]:
        """One request per (prompt, choice): choice i of prompt p has index p * n + i."""
        return [
            GenerationRequest(
                prompt=prompt,
                suffix=self.suffix,
                model=self.model,
                max_new_tokens=self.max_tokens,
                stop=_stops(self.stop),
                sampling=self.sampling(index),
            )
            for prompt in self.prompts
            for index in range(self.n)
        ]


class TextPart(WireModel):
    type: Literal["text"]
    text: Text


class ChatMessage(WireModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart]
    name: Text | None = None

    def pair(self) -> tuple[str, str]:
        role = "system" if self.role == "developer" else self.role
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return role, text


class ChatCompletionRequest(OpenAISampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[Any] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None

    NEUTRAL = {
        "logit_bias": (None,),
        "logprobs": (None, False),
        "top_logprobs": (None, 0),
        "tools": (None,),
        "tool_choice": (None, "none"),
        "response_format": (None, {"type": "text"}),
        "parallel_tool_calls": (None, True, False),
    }

    @property
    def rows(self) -> int:
        return self.n

    def generation_requests(self) -> list[GenerationRequest]:
        messages = tuple(m.pair() for m in self.messages)
        return [
            GenerationRequest(
                messages=messages,
                model=self.model,
                max_new_tokens=self.max_completion_tokens or self.max_tokens,
                stop=_stops(self.stop),
                sampling=self.sampling(index),
            )
            for index in range(self.n)
        ]


# --- Ollama -----------------------------------------------------------------------------------------------------


class OllamaOptions(WireModel):
    temperature: float | None = Field(0.8, ge=0)
    top_p: float | None = Field(0.9, gt=0, le=1)
    top_k: int | None = Field(40, ge=0)
    num_predict: int | None = Field(-1, ge=-2)
    """-1 (and -2, fill the context): as many tokens as the server allows."""
    stop: list[Text] | Text | None = Field(None, max_length=MAX_STOP_STRINGS)
    seed: Seed | None = None
    """Negative: a random seed."""
    repeat_penalty: float | None = Field(None, gt=0)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    # resources, accepted with no effect:
    num_ctx: int | None = None
    num_batch: int | None = None
    num_thread: int | None = None
    num_gpu: int | None = None
    main_gpu: int | None = None
    num_keep: int | None = None
    repeat_last_n: int | None = None
    """The penalty covers the whole context here."""
    use_mmap: bool | None = None
    use_mlock: bool | None = None
    numa: bool | None = None
    low_vram: bool | None = None
    vocab_only: bool | None = None
    f16_kv: bool | None = None
    logits_all: bool | None = None
    embedding_only: bool | None = None
    # neutral only:
    mirostat: int | None = None
    mirostat_eta: float | None = None
    mirostat_tau: float | None = None
    tfs_z: float | None = None
    typical_p: float | None = None
    min_p: float | None = None
    penalize_newline: bool | None = None

    NEUTRAL = {
        "mirostat": (None, 0),
        "mirostat_eta": (None, 0.1),
        "mirostat_tau": (None, 5.0),
        "tfs_z": (None, 1.0),
        "typical_p": (None, 1.0),
        "min_p": (None, 0.0),
        "penalize_newline": (None, True, False),
    }

    def sampling(self) -> SamplingParams:
        temperature = 0.8 if self.temperature is None else self.temperature
        return SamplingParams.from_request(
            temperature=temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            do_sample=temperature > 0,
            repetition_penalty=self.repeat_penalty,
            frequency_penalty=self.frequency_penalty,
            presence_penalty=self.presence_penalty,
            seed=None if self.seed is None or self.seed < 0 else self.seed,
        )

    @property
    def max_new_tokens(self) -> int | None:
        return None if self.num_predict is None or self.num_predict < 0 else max(self.num_predict, 1)


class OllamaRequestBase(WireModel):
    model: Text
    stream: bool = True
    options: OllamaOptions = Field(default_factory=OllamaOptions)
    keep_alive: int | float | Text | None = None
    """Accepted with no effect: the model stays loaded."""
    format: Any = None
    think: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = None

    NEUTRAL = {"format": (None, ""), "think": (None, False), "logprobs": (None, False), "top_logprobs": (None, 0)}


class OllamaGenerateRequest(OllamaRequestBase):
    prompt: Text = ""
    suffix: Text | None = None
    """Text after the cursor: the server builds the family's FIM prompt (what the template's `.Suffix` does)."""
    raw: bool = False
    """Accepted; prompts without a suffix are never templated here, so raw or not is the same."""
    system: Text | None = None
    template: Text | None = None
    context: list[int] | None = None
    images: list[Text] | None = None

    NEUTRAL = {
        **OllamaRequestBase.NEUTRAL,
        "system": (None,),
        "template": (None,),
        "context": (None,),
        "images": (None,),
    }

    def generation_request(self) -> GenerationRequest:
        return GenerationRequest(
            prompt=self.prompt,
            suffix=self.suffix if self.suffix else None,
            model=self.model,
            max_new_tokens=self.options.max_new_tokens,
            stop=_stops(self.options.stop),
            sampling=self.options.sampling(),
        )


class OllamaMessage(WireModel):
    role: Literal["system", "user", "assistant"]
    content: Text
    images: list[Text] | None = None

    NEUTRAL = {"images": (None,)}


class OllamaChatRequest(OllamaRequestBase):
    messages: list[OllamaMessage] = Field(min_length=1)
    tools: list[Any] | None = None

    NEUTRAL = {**OllamaRequestBase.NEUTRAL, "tools": (None,)}

    def generation_request(self) -> GenerationRequest:
        return GenerationRequest(
            messages=tuple((m.role, m.content) for m in self.messages),
            model=self.model,
            max_new_tokens=self.options.max_new_tokens,
            stop=_stops(self.options.stop),
            sampling=self.options.sampling(),
        )


class OllamaShowRequest(WireModel):
    model: Text | None = None
    name: Text | None = None
    """The old name of `model` (Continue sends it)."""
    verbose: bool = False

    @model_validator(mode="after")
    def _needs_a_name(self):
        if not (self.model or self.name):
            raise ValueError("model: give the name of a served model")
        return self


# --- llama.cpp --------------------------------------------------------------------------------------------------


class InfillChunk(WireModel):
    filename: Text = "tmp"
    text: Text


class InfillRequest(WireModel):
    input_prefix: Text = ""
    input_suffix: Text = ""
    input_extra: list[InfillChunk] = Field(default_factory=list)
    """Other files of the project, put before the FIM prompt (dropped first when the window is short)."""
    prompt: Text = ""
    """Text typed on the cursor's line, which follows the prefix."""
    model: Text | None = None
    n_predict: int = Field(-1, ge=-1)
    temperature: float = Field(0.8, ge=0)
    top_k: int = Field(40, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    stop: list[Text] = Field(default_factory=list, max_length=MAX_STOP_STRINGS)
    seed: int = Field(-1, ge=-1, lt=SEED_RANGE)
    """-1: a random seed."""
    repeat_penalty: float = Field(1.0, gt=0)
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    stream: bool = False
    # resources and client hints, accepted with no effect:
    cache_prompt: bool | None = None
    samplers: list[Text] | None = None
    t_max_prompt_ms: int | None = None
    t_max_predict_ms: int | None = None
    n_indent: int | None = None
    response_fields: list[Text] | None = None
    id_slot: int | None = None
    # neutral only:
    n_probs: int | None = None
    min_p: float | None = None
    typical_p: float | None = None

    NEUTRAL = {"n_probs": (None, 0), "min_p": (None, 0.0, 0.05), "typical_p": (None, 1.0)}

    def generation_request(self) -> GenerationRequest:
        sampling = SamplingParams.from_request(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            do_sample=self.temperature > 0,
            repetition_penalty=self.repeat_penalty,
            frequency_penalty=self.frequency_penalty,
            presence_penalty=self.presence_penalty,
            seed=None if self.seed < 0 else self.seed,
        )
        return GenerationRequest(
            prompt=self.input_prefix + self.prompt,
            suffix=self.input_suffix,
            context_files=tuple(ContextFile(c.filename, c.text) for c in self.input_extra),
            model=self.model,
            max_new_tokens=None if self.n_predict < 0 else max(self.n_predict, 1),
            stop=tuple(self.stop),
            sampling=sampling,
        )
