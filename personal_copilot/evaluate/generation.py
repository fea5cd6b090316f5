"""Batched generation for the benchmarks: left-to-right completions (HumanEval) and FIM middles (the own-code
benchmark), the model behind a small protocol so that scoring can be tested with a deterministic fake.

Prompts are sorted by length and left-padded in batches; a sequence ends at one of its family's stop tokens (end of
text, the FIM end token, file separator, …) or when its generated text (never the prompt) contains a stop string.
Decoding never runs `clean_up_tokenization_spaces`, which would change code. FIM prompts come from the family's
template through `FimEncoder`, the same code the trainer built its examples with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from personal_copilot.dataset import FimEncoder, HealingProcessor, Layout, TokenHealer, stop_token_ids, strip_healed
from personal_copilot.evaluate.models import LoadedModel

Advance = Callable[[int], None]


class CodeGenerator(Protocol):
    """What the benchmarks need from a model."""

    def complete(
        self,
        prompts: Sequence[str],
        *,
        num_samples: int,
        max_new_tokens: int,
        stop: Sequence[str],
        temperature: float,
        top_p: float,
        advance: Advance | None = None,
    ) -> list[list[str]]:
        """`num_samples` continuations of each prompt, each cut before its first stop string."""
        ...

    def infill(
        self,
        holes: Sequence[tuple[str, str]],
        *,
        max_new_tokens: int,
        stop: Sequence[str],
        advance: Advance | None = None,
    ) -> list[str]:
        """The middle the model writes between each (prefix, suffix), cut before its first stop string."""
        ...


class StopAtStrings:
    """A stopping criterion: a sequence is done once its generated text contains one of `stops`. Only the generated
    part is decoded (as the bigcode harness does), without the healed text it starts with (`heals`, one per row), so
    a stop string that ends the prompt does not stop anything."""

    def __init__(self, tokenizer: Any, prompt_width: int, stops: Sequence[str], heals: Sequence[str]) -> None:
        self.tokenizer, self.prompt_width, self.stops, self.heals = tokenizer, prompt_width, tuple(stops), heals

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        texts = self.tokenizer.batch_decode(
            input_ids[:, self.prompt_width :], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        texts = [strip_healed(text, heal) for text, heal in zip(texts, self.heals, strict=True)]
        done = [any(stop in text for stop in self.stops) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """`text` up to its first stop string."""
    return text[: min((i for stop in stops if (i := text.find(stop)) != -1), default=len(text))]


class ModelGenerator:
    """`CodeGenerator` over a loaded transformers model.

    Args:
        loaded: the model, tokenizer and family.
        batch_size: sequences per `generate` call.
        context_tokens: tokens of prefix and suffix a FIM prompt may hold (also bounded by the model's positions).
        layout: FIM prompt layout.
        heal: back each FIM prefix up by its last token and let the middle rewrite it (`dataset.healing`).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        batch_size: int,
        context_tokens: int = 2048,
        layout: Layout = "psm",
        heal: bool = True,
    ):
        self.loaded = loaded
        self.model, self.tokenizer, self.family = loaded.model, loaded.tokenizer, loaded.family
        self.batch_size, self.context_tokens, self.layout = batch_size, context_tokens, layout
        self.heal = heal
        self._encoder: FimEncoder | None = None
        self._healer: TokenHealer | None = None
        self.stop_ids = sorted(stop_token_ids(self.tokenizer, self.family))
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        self.truncated_prompts = 0
        """Prompts cut (from the start of a completion prompt, around the hole of a FIM prompt) to fit the model."""

    @property
    def encoder(self) -> FimEncoder:
        if self._encoder is None:
            self._encoder = FimEncoder(self.tokenizer, self.family)  # raises when the model has no FIM tokens
        return self._encoder

    @property
    def healer(self) -> TokenHealer | None:
        """The vocabulary's healer when FIM prompts are healed (built on first use: completions never need it)."""
        if not self.heal:
            return None
        if self._healer is None:
            self._healer = TokenHealer(self.tokenizer)
        return self._healer

    def complete(
        self,
        prompts: Sequence[str],
        *,
        num_samples: int,
        max_new_tokens: int,
        stop: Sequence[str],
        temperature: float,
        top_p: float,
        advance: Advance | None = None,
    ) -> list[list[str]]:
        room = max(1, self.loaded.max_positions - max_new_tokens)
        encoded = []
        for ids in self.tokenizer(list(prompts))["input_ids"]:
            self.truncated_prompts += len(ids) > room
            encoded.append(ids[-room:])
        repeated = [ids for ids in encoded for _ in range(num_samples)]
        texts = self._generate(repeated, max_new_tokens, stop, temperature, top_p, advance)
        return [texts[i * num_samples : (i + 1) * num_samples] for i in range(len(prompts))]

    def infill(
        self,
        holes: Sequence[tuple[str, str]],
        *,
        max_new_tokens: int,
        stop: Sequence[str],
        advance: Advance | None = None,
    ) -> list[str]:
        budget = max(2, min(self.context_tokens, self.loaded.max_positions - max_new_tokens) - 3)  # 3 sentinels
        parts = self.encoder.encode([text for hole in holes for text in hole])
        prompts, heals = [], []
        for prefix, suffix in zip(parts[0::2], parts[1::2], strict=True):
            prefix, healed = self.healer.split(prefix) if self.heal else (prefix, "")
            if len(prefix) + len(suffix) > budget:
                self.truncated_prompts += 1
                suffix = suffix[: max(budget // 4, budget - len(prefix))]
                prefix = prefix[max(0, len(prefix) - (budget - len(suffix))) :]
            prompts.append(self.encoder.fim_ids(self.layout, prefix, suffix))
            heals.append(healed)
        return self._generate(prompts, max_new_tokens, stop, 0.0, 1.0, advance, heals)

    def _generate(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        stop: Sequence[str],
        temperature: float,
        top_p: float,
        advance: Advance | None,
        heals: Sequence[str] | None = None,
    ) -> list[str]:
        """Completions of `prompts`; a prompt's completion starts with its text in `heals` (a healed FIM prompt),
        which is constrained while generated and taken off after."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        heals = heals or [""] * len(prompts)
        sampling = {"temperature": temperature, "top_p": top_p, "top_k": 0} if temperature > 0 else {}
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=temperature > 0,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            **sampling,
        )
        texts = [""] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # longest first: out of memory early
        device = next(self.model.parameters()).device
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(prompts[i]) for i in batch)
            input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                attention_mask[row, width - len(prompts[i]) :] = 1
            batch_heals = [heals[i] for i in batch]
            criteria = StoppingCriteriaList([StopAtStrings(self.tokenizer, width, stop, batch_heals)] if stop else [])
            processors = LogitsProcessorList()
            if any(batch_heals):
                processors.append(HealingProcessor(self.healer, width, batch_heals))
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=input_ids.to(device),
                    attention_mask=attention_mask.to(device),
                    generation_config=config,
                    stopping_criteria=criteria,
                    logits_processor=processors,
                )
            for row, i in enumerate(batch):
                texts[i] = cut_at_stops(strip_healed(self._decode(output[row, width:].tolist()), heals[i]), stop)
            if advance is not None:
                advance(len(batch))
        return texts

    def _decode(self, ids: list[int]) -> str:
        """The text of generated ids before the first stop (or pad) token; special tokens visible, spaces untouched."""
        ends = set(self.stop_ids) | {self.pad_id}
        cut = next((k for k, token in enumerate(ids) if token in ends), len(ids))
        return self.tokenizer.decode(ids[:cut], skip_special_tokens=False, clean_up_tokenization_spaces=False)
