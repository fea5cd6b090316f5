"""Per-request decoding inside one batched `model.generate`: each row has its own sampling settings, seed, stop
strings, token budget and post-processing, and streams its text as tokens arrive.

transformers samples a whole batch with one configuration and one random generator. A server batches requests that
each bring their own, so `generate` runs greedy and `RowSampling` (a logits processor) decides the rows that sample:
it applies the row's penalties, temperature, top-k and top-p with transformers' own processors, draws the token with
the row's seeded generator, and leaves only that token's logit finite, so the greedy step picks it. Greedy rows pass
through untouched: their tokens are exactly what `model.generate` alone would give. `RowStopping` (a stopping
criterion, called once per step with the grown sequences) hands each new token to its row, which decodes, checks
stops and reports the token; finished rows get padding from then on.

Extreme settings are legal and must not fail the batch: a row's logits are processed in float64 (temperature 1e-45
divides them by 1e-45 without overflowing, so it samples like greedy), and what overflows anyway (repetition penalty
5e-324) is made safe: +inf becomes the largest float, NaN an excluded token, and a row with nothing left falls back to
its unprocessed logits.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from personal_copilot.dataset import TokenHealer, strip_healed
from personal_copilot.serve.completion_text import CompletionText, FimBoundary
from personal_copilot.serve.generation import (
    FinishReason,
    GenerationResult,
    OnToken,
    PreparedRequest,
    SamplingParams,
    TokenEvent,
)

DECODE_CONTEXT_TOKENS = 4
"""Prompt tokens decoded ahead of the completion, so that tokenizers that drop a leading space at the start of a
text (SentencePiece) keep the completion's first space."""


def safe_logits(logits: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """`logits` without NaN or +inf (an excluded token, the largest float); `fallback` if no token is left."""
    logits = torch.nan_to_num(logits, nan=float("-inf"), posinf=torch.finfo(logits.dtype).max)
    return fallback.to(logits.dtype) if torch.isneginf(logits).all() else logits


class OccurrencePenalty(LogitsProcessor):
    """OpenAI's frequency and presence penalties on the tokens generated so far (the ids after `prompt_length`)."""

    def __init__(self, frequency: float, presence: float, prompt_length: int) -> None:
        self.frequency = frequency
        self.presence = presence
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :]
        counts = torch.zeros_like(scores).scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


def row_processors(sampling: SamplingParams, prompt_length: int) -> LogitsProcessorList:
    """The logits processors of one request, in transformers' order (penalties, then the sampling warpers)."""
    processors = LogitsProcessorList()
    if sampling.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))
    if sampling.frequency_penalty or sampling.presence_penalty:
        processors.append(OccurrencePenalty(sampling.frequency_penalty, sampling.presence_penalty, prompt_length))
    if sampling.do_sample:
        if sampling.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k > 0:
            processors.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            processors.append(TopPLogitsWarper(sampling.top_p))
    return processors


@dataclass
class Row:
    """The decoding state of one request of a batch."""

    prepared: PreparedRequest
    offset: int
    """Padding before the prompt in the batch (prompts are padded on the left)."""
    completion: CompletionText
    decode: Callable[[list[int]], str]
    stop_ids: frozenset[int]
    processors: LogitsProcessorList
    generator: torch.Generator | None
    seed: int | None
    healer: TokenHealer | None = None
    heal_rest: str = ""
    """The healed text the row has still to write: only tokens that agree with it may come next."""
    ids: list[int] = field(default_factory=list)
    tokens: list[TokenEvent] = field(default_factory=list)
    finish_reason: FinishReason | None = None

    @classmethod
    def start(
        cls,
        prepared: PreparedRequest,
        offset: int,
        decode: Callable[[list[int]], str],
        stop_ids: frozenset[int],
        device: torch.device,
        block_end: bool,
        healer: TokenHealer | None = None,
    ) -> Row:
        request = prepared.request
        fim = None
        if prepared.suffix is not None:
            fim = FimBoundary.around(prepared.prefix or "", prepared.suffix, block_end)
        generator, seed = None, None
        if request.sampling.do_sample:
            seed = request.sampling.seed if request.sampling.seed is not None else secrets.randbits(63)
            generator = torch.Generator(device=device).manual_seed(seed)
        context = prepared.prompt_ids[-DECODE_CONTEXT_TOKENS:]
        context_text = decode(context)
        return cls(
            prepared=prepared,
            offset=offset,
            completion=CompletionText(request.stop, fim),
            decode=lambda ids: strip_healed(decode(context + ids)[len(context_text) :], prepared.healed),
            stop_ids=stop_ids,
            processors=row_processors(request.sampling, len(prepared.prompt_ids)),
            generator=generator,
            seed=seed,
            healer=healer if prepared.healed else None,
            heal_rest=prepared.healed if healer else "",
        )

    @property
    def transforms_logits(self) -> bool:
        """The row samples, penalizes or heals: its logits are not left to the greedy step alone."""
        return self.generator is not None or bool(self.processors) or bool(self.heal_rest)

    def healing_mask(self, width: int) -> torch.Tensor | None:
        """The tokens that agree with the healed text still to write (None: any token may come)."""
        mask = self.healer.mask(self.heal_rest, width) if self.healer and self.heal_rest else None
        if mask is None:
            self.heal_rest = ""
        return mask

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def advance(self, token: int, logprob: float) -> TokenEvent:
        """Takes the row's next token; returns what it adds to the completion."""
        if token in self.stop_ids:
            delta = self.completion.update(self.completion.text, final=True)
            self.finish_reason = self.completion.finish_reason or "eos_token"
            event = TokenEvent(token, delta, logprob, special=True)
        else:
            self.ids.append(token)
            if self.healer is not None:
                self.heal_rest = self.healer.rest_after(self.heal_rest, token)
            text = self.decode(self.ids)
            delta = self.completion.update(text)
            if self.completion.finish_reason is None and len(self.ids) >= self.prepared.max_new_tokens:
                delta += self.completion.update(text, final=True)
                self.finish_reason = self.completion.finish_reason or "length"
            else:
                self.finish_reason = self.completion.finish_reason
            event = TokenEvent(token, delta, logprob)
        self.tokens.append(event)
        return event

    def result(self, seconds: float) -> GenerationResult:
        return GenerationResult(
            text=self.completion.text,
            finish_reason=self.finish_reason or "length",
            prompt_tokens=len(self.prepared.prompt_ids),
            generated_tokens=len(self.tokens),
            seed=self.seed,
            tokens=self.tokens,
            truncated_tokens=self.prepared.truncated_tokens,
            adapter=self.prepared.adapter,
            seconds=seconds,
        )


class BatchDecoding:
    """The rows of one `generate` call, and the two hooks transformers calls each step."""

    def __init__(self, rows: Sequence[Row], on_token: OnToken) -> None:
        self.rows = list(rows)
        self.on_token = on_token
        self._logits: torch.Tensor | None = None
        self._log_normalizer: torch.Tensor | None = None

    def sample(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Applies each row's processors; sampling rows draw their token and keep only its logit."""
        self._logits = scores
        self._log_normalizer = torch.logsumexp(scores, dim=-1)
        active = [i for i, row in enumerate(self.rows) if row.transforms_logits and not row.finished]
        if not active:
            return scores
        scores = scores.clone()
        for i in active:
            row = self.rows[i]
            raw = scores[i].double()
            if (healing := row.healing_mask(raw.shape[0])) is not None:
                raw = raw.masked_fill(~healing.to(raw.device), float("-inf"))
            logits = safe_logits(row.processors(input_ids[i : i + 1, row.offset :], raw[None])[0], raw)
            if row.generator is not None:
                probabilities = torch.softmax(logits, dim=-1)
                token = torch.multinomial(probabilities, 1, generator=row.generator)
                scores[i] = torch.full_like(scores[i], float("-inf")).scatter_(0, token, 0.0)
            else:
                scores[i] = safe_logits(logits.to(scores.dtype), scores[i])
        return scores

    def stop(self, input_ids: torch.LongTensor) -> torch.BoolTensor:
        """Hands each unfinished row its new token; returns which rows are done."""
        tokens = input_ids[:, -1]
        logprobs = (self._logits.gather(1, tokens[:, None])[:, 0] - self._log_normalizer).tolist()
        for i, (row, token) in enumerate(zip(self.rows, tokens.tolist(), strict=True)):
            if row.finished:
                continue
            event = row.advance(token, logprobs[i])
            if not self.on_token(i, event) and not row.finished:
                row.finish_reason = "cancelled"
        return torch.tensor([row.finished for row in self.rows], dtype=torch.bool, device=input_ids.device)


class RowSampling(LogitsProcessor):
    def __init__(self, batch: BatchDecoding) -> None:
        self.batch = batch

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return self.batch.sample(input_ids, scores)


class RowStopping(StoppingCriteria):
    def __init__(self, batch: BatchDecoding) -> None:
        self.batch = batch

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return self.batch.stop(input_ids)
