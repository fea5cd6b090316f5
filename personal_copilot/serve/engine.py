"""The transformers engine: one base model with any number of LoRA adapters, batched generation, FIM prompts from the
family registry (the sentinels training used), stops at special tokens and stop strings. Knows transformers and PEFT,
never FastAPI.

Adapters are PEFT LoRA adapters loaded side by side (`load_adapter`); a batch mixes them through PEFT's per-row
`adapter_names` (rows of the bare base get `__base__`), so requests for different adapters are generated together.
A completion stops at any special token of the tokenizer (end of text, FIM sentinels, file separators, end of turn),
at the family's stop tokens and at the request's stop strings; it never holds its prompt or the suffix.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

from personal_copilot.dataset import FimEncoder, TokenHealer, detect_family, stop_token_ids
from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import ModelRef, fim_layout, load_adapters, load_base_model
from personal_copilot.modeling import context_length, has_cuda, load_tokenizer, resolve_precision
from personal_copilot.serve.config import ServeConfig
from personal_copilot.serve.decoding import BatchDecoding, Row, RowSampling, RowStopping
from personal_copilot.serve.generation import (
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    OnToken,
    PreparedRequest,
)
from personal_copilot.serve.model_source import ServedNames, check_adapter, resolve_model, served_names
from personal_copilot.serve.prompts import PromptBuilder, chat_renderer, prepare_request, serving_limits

logger = logging.getLogger("personal_copilot.serve")
BASE_ROW = "__base__"
"""PEFT's adapter name for rows that use the bare base model."""


def model_context(model: Any) -> int:
    """The model's context length; fails when its config does not say (serve's limits are cut from it)."""
    length = context_length(model)
    if length is None:
        raise PcopilotError(f"cannot tell the context length of {model.config.model_type!r}; set --max_input_tokens")
    return length


class TransformersEngine:
    """Generates completions with a transformers causal LM (and its adapters) for the server.

    Args:
        model: a causal LM, or a PeftModel holding the adapters.
        tokenizer: its fast tokenizer.
        info: what the server says about the model (names, limits, FIM tokens).
        builder: builds the prompt ids of requests.
        stop_ids: token ids that end a completion.
        fim_stop_at_block_end: cut FIM completions where they leave the cursor's block.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        info: ModelInfo,
        builder: PromptBuilder,
        stop_ids: frozenset[int],
        fim_stop_at_block_end: bool = True,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.builder = builder
        self.stop_ids = stop_ids
        self.fim_stop_at_block_end = fim_stop_at_block_end
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop_ids)
        self._is_peft = bool(info.adapters)

    @classmethod
    def load(cls, config: ServeConfig) -> TransformersEngine:
        """Loads `--model` (hub id, directory or training run) and `--adapters` as the config says."""
        source = resolve_model(config.model)
        names = served_names(source, config.name)
        adapters = _adapter_paths(source, names, config)
        tokenizer = load_tokenizer(source.tokenizer)
        if config.chat_template is not None:
            tokenizer.chat_template = config.chat_template.read_text(encoding="utf-8")
        model, eos_ids = _load_weights(source.base, adapters, tokenizer, config)
        family = config.family or source.family or detect_family(tokenizer.get_vocab())
        encoder = FimEncoder(tokenizer, family, require_fim=family is not None)
        max_input, max_new = serving_limits(model_context(model), config.max_new_tokens, config.max_input_tokens)
        render_chat = chat_renderer(tokenizer)
        healer = TokenHealer(tokenizer) if config.fim_heal and encoder.prefix_id is not None else None
        layout = fim_layout(source.base, config.fim_layout)
        builder = PromptBuilder(encoder, max_input, config.prompt_overflow, layout, render_chat, healer)
        parameter = next(model.parameters())
        info = ModelInfo(
            name=names.default,
            base_model=source.base,
            tokenizer=source.tokenizer,
            base_name=names.base,
            adapters=tuple(adapters),
            default_adapter=names.adapter,
            max_input_tokens=max_input,
            max_new_tokens=max_new,
            max_total_tokens=model_context(model),
            fim=builder.fim,
            chat=render_chat is not None,
            model_type=model.config.model_type,
            dtype=str(parameter.dtype).removeprefix("torch."),
            device=parameter.device.type,
            parameters=sum(p.numel() for p in model.parameters()),
        )
        stop_ids = stop_token_ids(tokenizer, encoder.family, eos_ids)
        return cls(model, tokenizer, info, builder, stop_ids, config.fim_stop_at_block_end)

    def prepare(self, request: GenerationRequest) -> PreparedRequest:
        return prepare_request(self.info, self.builder, request)

    def decode(self, ids: list[int]) -> str:
        """Text of ids, special tokens visible, no clean-up of spaces (which would change code)."""
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def generation_config(self, max_new_tokens: int) -> GenerationConfig:
        """Greedy steps (rows that sample pick their token in `RowSampling`), with the KV cache, stopping at the
        stop tokens; `benchmarks/serve.py` calls `model.generate` with the same config."""
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            eos_token_id=sorted(self.stop_ids),
            pad_token_id=self.pad_id,
        )

    def generate(self, batch: Sequence[PreparedRequest], on_token: OnToken) -> list[GenerationResult]:
        start = time.perf_counter()
        width = max(len(p.prompt_ids) for p in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        rows = []
        for i, prepared in enumerate(batch):
            offset = width - len(prepared.prompt_ids)
            input_ids[i, offset:] = torch.tensor(prepared.prompt_ids)
            attention_mask[i, offset:] = 1
            rows.append(
                Row.start(
                    prepared,
                    offset,
                    self.decode,
                    self.stop_ids,
                    self.device,
                    self.fim_stop_at_block_end,
                    self.builder.healer,
                )
            )
        decoding = BatchDecoding(rows, on_token)
        adapter_names = {"adapter_names": [p.adapter or BASE_ROW for p in batch]} if self._is_peft else {}
        with torch.inference_mode():
            self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                generation_config=self.generation_config(max(p.max_new_tokens for p in batch)),
                logits_processor=LogitsProcessorList([RowSampling(decoding)]),
                stopping_criteria=StoppingCriteriaList([RowStopping(decoding)]),
                **adapter_names,
            )
        seconds = time.perf_counter() - start
        return [row.result(seconds) for row in rows]


def _adapter_paths(source: ModelRef, names: ServedNames, config: ServeConfig) -> dict[str, str]:
    """{name: directory} of the run's adapter and of --adapters."""
    adapters = {names.adapter: str(source.adapter)} if names.adapter else {}
    for name, path in config.adapter_paths().items():
        if name in adapters or name == names.base:
            raise PcopilotError(f"--adapters {name}={path}: the name {name!r} is taken; choose another")
        adapters[name] = str(check_adapter(name, path))
    return adapters


def _load_weights(base: str, adapters: dict[str, str], tokenizer: Any, config: ServeConfig) -> tuple[Any, Any]:
    """The model in eval mode on the GPU if there is one, with its adapters; and the checkpoint's eos ids."""
    precision = resolve_precision(config.precision)
    model = load_base_model(
        base,
        precision=precision,
        vocabulary=len(tokenizer),
        adapters=adapters.values(),
        attention=config.attn_implementation,
    )
    eos_ids = model.generation_config.eos_token_id
    model.generation_config = GenerationConfig()  # requests choose the sampling, not generation_config.json
    if adapters:
        model = _load_adapters(model, adapters, base)
    model.eval()
    if has_cuda():
        model.to("cuda")
    return model, eos_ids


def _load_adapters(model: Any, adapters: dict[str, str], base: str) -> Any:
    """The model with every adapter loaded under its name (LoRA only: PEFT mixes LoRA adapters within a batch)."""
    for name, path in adapters.items():
        adapter_config = json.loads((Path(path) / "adapter_config.json").read_text())
        if adapter_config.get("peft_type") != "LORA" or adapter_config.get("use_dora"):
            raise PcopilotError(
                f"adapter {name!r} ({path}) is {adapter_config.get('peft_type')}"
                f"{' with DoRA' if adapter_config.get('use_dora') else ''}; the server mixes plain LoRA adapters in "
                "a batch and serves only those (merge it into the model with `pcopilot adapters merge` instead)"
            )
        trained_on = adapter_config.get("base_model_name_or_path")
        if trained_on and trained_on != base:
            logger.warning("adapter %r was trained on %s, served on %s", name, trained_on, base)
    return load_adapters(model, adapters, base)
