"""What `--model` and `--adapters` point at, for serving: `personal_copilot.model_ref`'s answer, with serve's own
policy on top (a bare adapter folder is served as `--model BASE --adapters NAME=PATH`)."""

from __future__ import annotations

from pathlib import Path

from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import ModelRef, require_adapter, resolve_model_ref


def resolve_model(model: str) -> ModelRef:
    """The model `--model` names; its adapter (a run's, a combined one) is what plain requests get.

    Raises:
        PcopilotError: a bare adapter folder (with the command that serves it), or what `resolve_model_ref` refuses.
    """
    ref = resolve_model_ref(model)
    if ref.adapter is not None and ref.record is None:
        raise PcopilotError(
            f"{ref.adapter} holds a LoRA adapter, not a model: serve its base with --model {ref.base} --adapters "
            f"NAME={ref.adapter}, or give the training run directory it came from"
        )
    return ref


def base_name(ref: ModelRef) -> str:
    """The name the bare base model is served under: its folder's name, or its hub id."""
    return Path(ref.base).name if Path(ref.base).is_dir() else ref.base


def check_adapter(name: str, path: str) -> Path:
    """The directory of an --adapters entry, checked to hold a LoRA adapter."""
    return require_adapter(resolve_model_ref(path, f"--adapters {name}="), f"--adapters {name}=")
