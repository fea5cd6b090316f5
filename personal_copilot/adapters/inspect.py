"""What an adapter folder holds, read from its files alone (no model is loaded): base, rank, alpha, targets, sizes, and
how it was made (the training run, or the recipe of `pcopilot adapters`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from personal_copilot.adapters.checks import VARIANTS, adapted_modules, base_weight_copies
from personal_copilot.adapters.inputs import ADAPTER_WEIGHTS, AdapterDir
from personal_copilot.configs import REPORT_FILE


@dataclass
class AdapterInfo:
    path: str
    base_model: str | None
    made_by: str
    """`pcopilot train (method, task, steps)`, `pcopilot adapters <command>`, or `unknown`."""
    rank: int
    alpha: float
    scaling: float
    """Factor on B @ A: alpha / r (alpha / sqrt(r) with rslora)."""
    variants: list[str]
    """LoRA variants beyond plain LoRA (rslora, DoRA, trained token embeddings, …)."""
    target_modules: list[str] | str
    adapted_modules: int
    base_weight_copies: list[str]
    """Modules of which the adapter holds whole base weights (grown embeddings, modules_to_save)."""
    parameters: int
    dtypes: list[str]
    megabytes: float
    family: str | None
    trained_on_4bit_base: bool
    has_tokenizer: bool
    recipe: dict[str, Any] | None


def _made_by(adapter: AdapterDir) -> str:
    if adapter.run is None or adapter.run.stage != "train":
        return f"pcopilot {adapter.run.stage}" if adapter.run else "unknown"
    config = adapter.run.config
    report_path = adapter.path / REPORT_FILE
    steps = json.loads(report_path.read_text()).get("steps") if report_path.is_file() else None
    return f"pcopilot train ({config.get('method')}, {config.get('task')}, {steps} steps)"


def describe(adapter: AdapterDir) -> AdapterInfo:
    tensors = adapter.tensors()
    lora = adapter.lora
    rank, alpha = adapter.rank, float(lora.get("lora_alpha", lora["r"]))
    variants = (["rslora"] if lora.get("use_rslora") else []) + [
        key.removeprefix("use_").removesuffix("_config") for key in VARIANTS if lora.get(key)
    ]
    return AdapterInfo(
        path=str(adapter.path),
        base_model=adapter.base_model,
        made_by=_made_by(adapter),
        rank=rank,
        alpha=alpha,
        scaling=alpha / (math.sqrt(lora["r"]) if lora.get("use_rslora") else lora["r"]),
        variants=variants,
        target_modules=sorted(lora["target_modules"])
        if isinstance(lora["target_modules"], list)
        else lora["target_modules"],
        adapted_modules=len(adapted_modules(adapter.tensor_shapes())),
        base_weight_copies=base_weight_copies(adapter),
        parameters=adapter.parameter_count(),
        dtypes=sorted({dtype for dtype, _ in tensors.values()}),
        megabytes=round((adapter.path / ADAPTER_WEIGHTS).stat().st_size / 1e6, 3),
        family=adapter.family,
        trained_on_4bit_base=adapter.trained_on_4bit_base,
        has_tokenizer=adapter.has_tokenizer,
        recipe=adapter.recipe,
    )
