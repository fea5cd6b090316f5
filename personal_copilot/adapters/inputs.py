"""What the commands are given: adapter folders (plain PEFT folders, `pcopilot train` runs, outputs of `pcopilot
adapters`) and base models (hub ids, local folders, training runs), read and checked before any model is loaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personal_copilot.configs import RunRecord, read_run_record
from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import ADAPTER_CONFIG, locate_folder, require_model, resolve_model_ref, tokenizer_size
from personal_copilot.modeling import has_tokenizer

ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass
class AdapterDir:
    """A LoRA adapter on disk and what its folder says about how it was made."""

    path: Path
    lora: dict[str, Any]
    """The adapter_config.json PEFT wrote."""
    run: RunRecord | None = None
    """The record of the run that made it (None for a folder from elsewhere)."""

    @property
    def base_model(self) -> str | None:
        """The base it was trained on (or re-targeted to): the run's record, else PEFT's."""
        return (self.run and self.run.base_model) or self.lora.get("base_model_name_or_path")

    @property
    def rank(self) -> int:
        """The largest rank of any module (rank_pattern may raise it above r)."""
        return max([int(self.lora["r"]), *(int(r) for r in (self.lora.get("rank_pattern") or {}).values())])

    @property
    def trained_on_4bit_base(self) -> bool:
        """True for a QLoRA run, and for adapters made from one."""
        return bool(self.run and self.run.trained_on_4bit_base)

    @property
    def family(self) -> str | None:
        return self.run.family if self.run else None

    @property
    def recipe(self) -> dict[str, Any] | None:
        """How `pcopilot adapters` made it (None for a trained adapter)."""
        return self.run.recipe if self.run else None

    @property
    def has_tokenizer(self) -> bool:
        return has_tokenizer(self.path)

    @property
    def trainable_token_indices(self) -> list[int] | dict[str, list[int]] | None:
        return self.lora.get("trainable_token_indices")

    def tensors(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Name -> (dtype, shape) of every tensor in the weights file, read from its header (no tensor loaded)."""
        from safetensors import safe_open

        with safe_open(str(self.path / ADAPTER_WEIGHTS), framework="numpy") as weights:
            slices = {name: weights.get_slice(name) for name in weights.keys()}  # noqa: SIM118
            return {name: (s.get_dtype(), tuple(s.get_shape())) for name, s in slices.items()}

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: shape for name, (_, shape) in self.tensors().items()}

    def parameter_count(self) -> int:
        return sum(math.prod(shape) for shape in self.tensor_shapes().values())

    def describe(self) -> dict[str, Any]:
        """Provenance of this input for the recipe of an output."""
        made = {"path": str(self.path), "base_model": self.base_model}
        if self.recipe:
            made["recipe"] = self.recipe
        return made


def read_adapter(path: str | Path) -> AdapterDir:
    """Reads a LoRA adapter folder (or a training run holding one); fails with what the folder is instead."""
    folder = locate_folder(str(path), "--adapter")
    if folder is None:
        raise PcopilotError(f"adapter {str(path)!r} is not a folder: give an adapter folder or a pcopilot train run")
    config_path = folder / ADAPTER_CONFIG
    if not config_path.is_file():
        nested = sorted(p.parent.name for p in folder.glob(f"*/{ADAPTER_CONFIG}"))
        if (folder / "config.json").is_file():
            hint = "it holds a full model (use it as --base)"
        elif nested:
            hint = f"it holds adapters in sub-folders: {', '.join(nested)} (give {folder / nested[0]})"
        else:
            hint = "no adapter there"
        raise PcopilotError(f"{folder} has no {ADAPTER_CONFIG}: {hint}")
    lora = json.loads(config_path.read_text(encoding="utf-8"))
    if lora.get("peft_type") != "LORA":
        raise PcopilotError(f"{folder} is a {lora.get('peft_type')} adapter; pcopilot adapters works on LoRA adapters")
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise PcopilotError(f"{folder} has no {ADAPTER_WEIGHTS} (adapters saved as .bin: re-save with safetensors)")
    return AdapterDir(path=folder.resolve(), lora=lora, run=read_run_record(folder))


def resolve_base(base: str | None, adapters: list[AdapterDir]) -> str:
    """The base model to load: `base` (a hub id, `base`, a model folder, a full or merged run) or, when None, the
    base the adapters record; fails when they record none or different ones, or when `base` is an adapter."""
    if base is None:
        recorded = {a.base_model for a in adapters}
        if None in recorded or len(recorded) != 1:
            listing = ", ".join(f"{a.path.name}: {a.base_model or 'none recorded'}" for a in adapters)
            raise PcopilotError(f"pass --base: the adapters do not name one base model ({listing})")
        base = recorded.pop()
    ref = resolve_model_ref(base, "--base")
    advice = (
        f"pass its base ({ref.base}) instead, or merge it first (pcopilot adapters merge --adapter {base} --output "
        "MERGED) and pass MERGED"
    )
    return require_model(ref, "--base", advice).base


def same_base(a: str | None, b: str | None) -> bool:
    """Whether two base references name the same model (paths compared after resolving)."""
    if a is None or b is None:
        return False
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def tokenizer_length(adapter: AdapterDir) -> int | None:
    """Vocabulary of the tokenizer saved with the adapter (a chat run's adds tokens to its base), None without one."""
    return tokenizer_size(adapter.path)
