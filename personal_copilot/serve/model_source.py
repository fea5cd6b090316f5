"""What `--model` and `--adapters` point at, for serving: `personal_copilot.model_ref`'s answer, with serve's own
policy on top (a bare adapter folder is served with `--model BASE --adapters NAME=PATH`; names for the API)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import require_adapter, resolve_model_ref


@dataclass(frozen=True)
class ModelSource:
    base: str
    """Hub id or directory of the base model's weights."""
    adapter: str | None
    """Directory of the run's LoRA adapter (None: the weights are the model)."""
    tokenizer: str
    family: str | None
    """FIM family a stage recorded."""
    name: str
    """Default served name."""
    base_name: str
    """Name of the bare base model."""


def resolve_model(model: str) -> ModelSource:
    """Where the weights, adapter and tokenizer of `--model` are.

    Raises:
        PcopilotError: a bare adapter folder (with the command that serves it), or what `resolve_model_ref` refuses.
    """
    ref = resolve_model_ref(model)
    base_name = Path(ref.base).name if Path(ref.base).is_dir() else ref.base
    if ref.adapter is None:
        return ModelSource(ref.base, None, ref.tokenizer, ref.family, ref.name, ref.name)
    if ref.record is None:
        raise PcopilotError(
            f"{ref.adapter} holds a LoRA adapter, not a model: serve its base with --model {ref.base} --adapters "
            f"NAME={ref.adapter}, or give the training run directory it came from"
        )
    return ModelSource(ref.base, str(ref.adapter), ref.tokenizer, ref.family, ref.name, base_name)


def check_adapter(name: str, path: str) -> Path:
    """The directory of an --adapters entry, checked to hold a LoRA adapter."""
    return require_adapter(resolve_model_ref(path, f"--adapters {name}="), f"--adapters {name}=")
