"""What `--model`, `--adapter` and `--adapter_weight` name, resolved to a base model, a LoRA adapter and a tokenizer,
and loaded for evaluation: through `personal_copilot.modeling`, peft for the adapter, and peft's
`add_weighted_adapter` to scale it (as the blog scaled its adapter to 0.8).

What each value names is `personal_copilot.model_ref`'s answer; eval's own policy is that --adapter must be an
adapter and --model with --adapter a whole model, and that the tuned folder's run record gives the held-out split.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, replace
from typing import Any

from personal_copilot.configs import RunRecord
from personal_copilot.dataset import ModelFamily, detect_family, get_family
from personal_copilot.errors import PcopilotError
from personal_copilot.evaluate.config import ModelOptions
from personal_copilot.model_ref import load_model_ref, resolve_model_and_adapter
from personal_copilot.modeling import context_length

WEIGHTED_ADAPTER = "weighted"
"""Name of the scaled copy of the adapter that `--adapter_weight` makes."""


@dataclass(frozen=True)
class ModelSpec:
    """A base model, optionally with a LoRA adapter scaled by `adapter_weight`, and the tokenizer to use."""

    base: str
    tokenizer: str
    adapter: str | None = None
    adapter_weight: float = 1.0
    family: str | None = None

    def without_adapter(self) -> ModelSpec:
        return replace(self, adapter=None, adapter_weight=1.0)

    def describe(self) -> str:
        if self.adapter is None:
            return self.base
        weight = f" x{self.adapter_weight:g}" if self.adapter_weight != 1.0 else ""
        return f"{self.base} + {self.adapter}{weight}"


def resolve_model(options: ModelOptions) -> tuple[ModelSpec, RunRecord | None]:
    """The model `options` name (through `resolve_model_ref`), and the run record of the tuned model or adapter
    (its data splits and eval rows; None for a folder from elsewhere or a hub id).

    Raises:
        PcopilotError: a model that brings its own adapter given with another --adapter, an --adapter that is a
            whole model, or a weight for a model without adapter.
    """
    tuned = resolve_model_and_adapter(options.model, options.adapter)
    if tuned.adapter is None and options.adapter_weight != 1.0:
        raise PcopilotError(f"--adapter_weight scales a LoRA adapter, and {tuned.value} has none (a full fine-tune?)")
    adapter_dir = str(tuned.adapter) if tuned.adapter else None
    spec = ModelSpec(tuned.base, tuned.tokenizer, adapter_dir, options.adapter_weight, options.family or tuned.family)
    return spec, tuned.record


@dataclass
class LoadedModel:
    """A model ready to generate and score, its tokenizer and its FIM family (None when it has none)."""

    model: Any
    tokenizer: Any
    family: ModelFamily | None
    spec: ModelSpec

    @property
    def max_positions(self) -> int:
        """Longest sequence the model takes (prompt and generation); 2048 when its config does not say."""
        return context_length(self.model) or 2048


def free_accelerator_memory() -> None:
    """Collects models nothing refers to any more and returns their GPU memory to the driver."""
    from personal_copilot.modeling import has_cuda

    gc.collect()
    if has_cuda():
        import torch

        torch.cuda.empty_cache()


def load_for_eval(spec: ModelSpec, precision: str) -> LoadedModel:
    """Loads the tokenizer, the base model in `precision` (on the GPU when there is one), the adapter and its
    scaled copy, in eval mode."""
    from personal_copilot.modeling import has_cuda, load_tokenizer, resolve_precision

    tokenizer = load_tokenizer(spec.tokenizer)
    adapters = {"default": spec.adapter} if spec.adapter else {}
    model = load_model_ref(spec.base, adapters, precision=resolve_precision(precision), vocabulary=len(tokenizer))
    if spec.adapter is not None and spec.adapter_weight != 1.0:
        model.add_weighted_adapter(["default"], [spec.adapter_weight], WEIGHTED_ADAPTER, combination_type="linear")
        model.set_adapter(WEIGHTED_ADAPTER)
        model.delete_adapter("default")
    if has_cuda():
        model = model.to("cuda")
    model.eval()
    family = get_family(spec.family) if spec.family else detect_family(tokenizer.get_vocab())
    return LoadedModel(model, tokenizer, family, spec)
