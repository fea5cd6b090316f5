"""What `--model`, `--adapter` and `--adapter_weight` name, resolved to a base model, a LoRA adapter and a tokenizer,
and loaded for evaluation: through `personal_copilot.modeling`, peft for the adapter, and peft's
`add_weighted_adapter` to scale it (as the blog scaled its adapter to 0.8).

A `pcopilot train` run directory can stand for the model: its `pcopilot_config.yaml` names the base model, the
family and the data splits, and the directory holds the adapter (or the fully fine-tuned model) and the tokenizer.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from personal_copilot.configs import CONFIG_FILE, read_run_config
from personal_copilot.dataset import ModelFamily, detect_family, get_family
from personal_copilot.errors import PcopilotError
from personal_copilot.evaluate.config import ModelOptions
from personal_copilot.modeling import has_tokenizer

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


def training_run_config(path: str | None) -> dict[str, Any] | None:
    """The pcopilot_config.yaml of a `pcopilot train` run directory; None for anything else."""
    if not path or not (Path(path) / CONFIG_FILE).is_file():
        return None
    config = read_run_config(Path(path))
    return config if config.get("stage") == "train" else None


def _adapter_base(adapter: str) -> str:
    config_file = Path(adapter) / "adapter_config.json"
    if not config_file.is_file():
        raise PcopilotError(f"--adapter {adapter!r} is not a PEFT adapter directory (no adapter_config.json)")
    base = json.loads(config_file.read_text()).get("base_model_name_or_path")
    if not base:
        raise PcopilotError(f"--adapter {adapter!r} does not name its base model; give it with --model")
    return base


def resolve_model(options: ModelOptions) -> tuple[ModelSpec, dict[str, Any] | None]:
    """The model `options` name, and the training run's config when a run directory was given.

    Raises:
        PcopilotError: a run given with another --adapter, an adapter whose base cannot be found, or a weight for a
            model without adapter.
    """
    model, adapter = options.model, options.adapter
    run_config = training_run_config(model)
    if run_config is not None:
        is_lora = (Path(model) / "adapter_config.json").is_file()
        if adapter is not None:
            raise PcopilotError(
                f"--model {model} is a training run{' with its own adapter' if is_lora else ''}; give --adapter only "
                "with a base model (e.g. --model BASE --adapter RUN)"
            )
        base, adapter = (run_config["base_model"], model) if is_lora else (model, None)
        tokenizer = model
    else:
        run_config = training_run_config(adapter)
        if model is None:
            model = run_config["base_model"] if run_config else _adapter_base(adapter)
        tokenizer = adapter if adapter and has_tokenizer(adapter) else model
        base = model
    if adapter is None and options.adapter_weight != 1.0:
        raise PcopilotError(f"--adapter_weight scales a LoRA adapter, and {base} has none (a full fine-tune?)")
    family = options.family or (run_config or {}).get("family")
    return ModelSpec(base, tokenizer, adapter, options.adapter_weight, family), run_config


@dataclass
class LoadedModel:
    """A model ready to generate and score, its tokenizer and its FIM family (None when it has none)."""

    model: Any
    tokenizer: Any
    family: ModelFamily | None
    spec: ModelSpec

    @property
    def max_positions(self) -> int:
        """Longest sequence the model takes (prompt and generation)."""
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            if isinstance(getattr(config, name, None), int):
                return getattr(config, name)
        return 2048


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
    from personal_copilot.modeling import has_cuda, load_model, load_tokenizer, resolve_precision

    tokenizer = load_tokenizer(spec.tokenizer)
    model = load_model(spec.base, precision=resolve_precision(precision))
    if spec.adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, spec.adapter)
        except (OSError, ValueError, RuntimeError) as error:
            raise PcopilotError(f"cannot load adapter {spec.adapter!r} onto {spec.base!r}: {error}") from error
        if spec.adapter_weight != 1.0:
            model.add_weighted_adapter(["default"], [spec.adapter_weight], WEIGHTED_ADAPTER, combination_type="linear")
            model.set_adapter(WEIGHTED_ADAPTER)
            model.delete_adapter("default")
    if has_cuda():
        model = model.to("cuda")
    model.eval()
    family = get_family(spec.family) if spec.family else detect_family(tokenizer.get_vocab())
    return LoadedModel(model, tokenizer, family, spec)
