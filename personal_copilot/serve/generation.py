"""What the HTTP layer and the engine agree on: a protocol-neutral generation request, its prepared (tokenized) form,
the events and result of a generation, what the server knows about its model, and the `Engine` protocol.

Nothing here imports torch or FastAPI: the routes are tested with a fake engine, the engine without HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["length", "eos_token", "stop_sequence", "block_end", "cancelled"]
"""Why a completion ended: its token budget, a stop token (end of text, FIM sentinel, file separator, end of turn),
one of the request's stop strings, the FIM block rule (or the suffix's next line repeated), or the client left."""


class RequestError(Exception):
    """A request the server cannot serve as asked: answered with `status` and the message (never with a 500).

    Args:
        message: what was wrong, with the value, and what to do instead.
        status: HTTP status (401, 404, 413, 422, 429).
        field: the request field at fault, when there is one.
    """

    def __init__(self, message: str, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen. Greedy unless `do_sample`; penalties apply to greedy choices too."""

    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0: no top-k filter."""
    repetition_penalty: float = 1.0
    """Multiplicative penalty on tokens already in the prompt or completion (1: none)."""
    frequency_penalty: float = 0.0
    """Subtracted from a token's logit once per time it was generated (OpenAI semantics)."""
    presence_penalty: float = 0.0
    """Subtracted from a token's logit if it was generated at all (OpenAI semantics)."""
    seed: int | None = None
    """Seed of this request's sampler (None: a fresh one, reported in the result)."""

    @staticmethod
    def from_request(
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        do_sample: bool = False,
        repetition_penalty: float | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
    ) -> SamplingParams:
        """The parameters a request asks for, as text-generation-inference reads them: sampling when `do_sample` or
        any of temperature / top-p / top-k is set to a value that changes the distribution; temperature 0 is greedy.
        """
        filters = (temperature not in (None, 1.0)) or (top_p not in (None, 1.0)) or (top_k not in (None, 0))
        sample = (do_sample or filters) and temperature != 0
        return SamplingParams(
            do_sample=bool(sample),
            temperature=1.0 if temperature in (None, 0) else temperature,
            top_p=1.0 if top_p is None else top_p,
            top_k=top_k or 0,
            repetition_penalty=repetition_penalty or 1.0,
            frequency_penalty=frequency_penalty or 0.0,
            presence_penalty=presence_penalty or 0.0,
            seed=seed,
        )


@dataclass(frozen=True)
class ContextFile:
    """Another file of the project, given as context before the FIM prompt (llama.cpp's `input_extra`)."""

    filename: str
    text: str


@dataclass(frozen=True)
class GenerationRequest:
    """One completion to generate, whichever protocol asked for it.

    Exactly one kind of prompt: `prompt` alone (plain text, or a FIM prompt a client built with the family's
    sentinels), `prompt` + `suffix` (the server builds the FIM prompt: `prompt` is the prefix) or `messages` (chat).
    """

    prompt: str = ""
    suffix: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    """(role, content) pairs, rendered with the chat template."""
    context_files: tuple[ContextFile, ...] = ()
    model: str | None = None
    """The served name asked for: the server's own name, the base model's or an adapter's (None: the default)."""
    max_new_tokens: int | None = None
    """None: as many as the server allows."""
    stop: tuple[str, ...] = ()
    sampling: SamplingParams = field(default_factory=SamplingParams)
    truncate: int | None = None
    """Keep at most this many prompt tokens (TGI `truncate`), cutting like `--prompt_overflow truncate`."""


@dataclass(frozen=True)
class PreparedRequest:
    """A request the engine accepted: its prompt as token ids, its adapter and token budget."""

    request: GenerationRequest
    prompt_ids: list[int]
    adapter: str | None
    """Adapter name (None: the base model)."""
    max_new_tokens: int
    prefix: str | None = None
    """The FIM prefix and suffix (built by the server or parsed from a client's FIM prompt), for post-processing."""
    suffix: str | None = None
    truncated_tokens: int = 0
    """Prompt tokens cut to fit the context window."""
    prompt_text: str | None = None
    """The prompt as text, special tokens spelled out (for an engine that takes text: `--engine`)."""
    healed: str = ""
    """The FIM prefix's last token's text, left out of `prompt_ids`: the completion writes it first, and it is taken
    off the completion's text (token healing)."""


@dataclass(frozen=True)
class TokenEvent:
    """One generated token, as streamed: `text` is what it adds to the completion after stop handling (possibly "",
    while a possible stop string is held back), so the texts of a stream add up to the final text."""

    id: int
    text: str
    logprob: float
    """Log-probability of the token under the model's (unfiltered) distribution."""
    special: bool = False
    """A stop token (its text is never part of the completion)."""


@dataclass
class GenerationResult:
    """A finished completion."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    generated_tokens: int
    seed: int | None = None
    tokens: list[TokenEvent] = field(default_factory=list)
    truncated_tokens: int = 0
    adapter: str | None = None
    seconds: float = 0.0
    """Time from the request being queued to its last token."""


@dataclass(frozen=True)
class FimTokens:
    """The FIM and stop tokens of the served model's family (what editor plugins need to be told). `prefix`,
    `suffix` and `middle` are the text a client puts around the prefix and suffix of a PSM prompt (CodeLlama's
    carry spaces: `<PRE> `, ` <SUF>`, ` <MID>`)."""

    family: str
    prefix: str
    suffix: str
    middle: str
    eos: str
    stop: tuple[str, ...]
    """Tokens that end a completion (llm-vscode's tokensToClear)."""
    file_sep: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What the server says about its model (TGI /info, /v1/models, Ollama /api/tags and /api/show, editors)."""

    name: str
    """The served name: plain requests get the default adapter (or the base model)."""
    base_model: str
    tokenizer: str
    """Hub id or directory of the tokenizer (editor plugins count tokens with it)."""
    base_name: str
    """The name under which the bare base model is served."""
    adapters: tuple[str, ...]
    default_adapter: str | None
    max_input_tokens: int
    max_new_tokens: int
    max_total_tokens: int
    fim: FimTokens | None
    chat: bool
    """The tokenizer has a chat template."""
    model_type: str = "unknown"
    dtype: str = "float32"
    device: str = "cpu"
    parameters: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a request may ask for."""
        return tuple(dict.fromkeys((self.name, self.base_name, *self.adapters)))

    def adapter_for(self, name: str | None) -> str | None:
        """The adapter a requested name stands for (None: the bare base model); no name means the default.

        Raises:
            RequestError: 404 for a name this server does not serve.
        """
        if not name or name == self.name:
            return self.default_adapter
        if name in self.adapters:
            return name
        if name == self.base_name:
            return None
        raise RequestError(f"unknown model or adapter {name!r}; this server serves: {', '.join(self.names)}", 404)


OnToken = Callable[[int, TokenEvent], bool]
"""Called with (index in the batch, event) for every generated token; returning False stops that row."""


class Engine(Protocol):
    """Generates completions for batches of prepared requests; the HTTP layer holds one and knows nothing else."""

    info: ModelInfo

    def prepare(self, request: GenerationRequest) -> PreparedRequest:
        """Checks and tokenizes a request (fast; called as the request arrives).

        Raises:
            RequestError: unknown model name (404), a prompt over the limits (422), or a request the model cannot
                serve (422: FIM on a model without FIM tokens, chat without a chat template).
        """
        ...

    def generate(self, batch: Sequence[PreparedRequest], on_token: OnToken) -> list[GenerationResult]:
        """Generates the batch together (called from one worker thread); one result per request, in order."""
        ...


@runtime_checkable
class StreamingEngine(Protocol):
    """An engine that batches by itself (a remote inference engine): each request is generated on its own, as a task
    on the event loop, and the engine interleaves them."""

    info: ModelInfo

    def prepare(self, request: GenerationRequest) -> PreparedRequest:
        """As `Engine.prepare`."""
        ...

    def generate_one(self, prepared: PreparedRequest, stream: bool) -> AsyncIterator[TokenEvent | GenerationResult]:
        """The request's token events (when `stream`), then its result.

        Raises:
            GenerationFailed: the engine failed (`status` 502: an error or a broken stream; 504: a time-out).
        """
        ...

    async def aclose(self) -> None:
        """Closes what the engine holds open (its connection pool); called when the server stops."""
        ...
