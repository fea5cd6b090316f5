"""What `--model` and `--adapters` point at, for serving: `personal_copilot.model_ref`'s answer, with serve's own
policy on top (a bare adapter folder is served as `--model BASE --adapters NAME=PATH`), and the names it is served
under."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import ModelRef, require_adapter, resolve_model_ref, short_name
from personal_copilot.serve.generation import ModelInfo


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


@dataclass(frozen=True)
class ServedNames:
    """The names of what `--model` brings: the bare base model, and the run's adapter when it has one."""

    base: str
    adapter: str | None

    @property
    def default(self) -> str:
        """What a request without a model name gets: the run's adapter, else the base."""
        return self.adapter or self.base


def served_names(source: ModelRef, name: str | None = None) -> ServedNames:
    """The base is called `base` (the embedded one), after its folder or after its hub id's last part; a run's adapter
    after the run folder given (a copied quickstart run after its copy). `name` (--name) renames the default one.

    Raises:
        PcopilotError: the run's adapter would have its base's name.
    """
    if source.adapter is None:
        return ServedNames(name or short_name(source.base), None)
    base, adapter = short_name(source.base), name or source.name
    if adapter == base:
        raise PcopilotError(
            f"--model {source.value}: its adapter and its base model would both be served as {base!r}; "
            "name the adapter with --name"
        )
    return ServedNames(base, adapter)


def describe_names(info: ModelInfo) -> str:
    """Every name the server answers to and what it stands for, the default (a request that names none) first."""
    described = []
    for name in info.names:
        what = "base model" if name == info.base_name else f"LoRA adapter on {info.base_name}"
        described.append(f"{name} ({what}{', the default' if name == info.name else ''})")
    return ", ".join(described)


def check_adapter(name: str, path: str) -> Path:
    """The directory of an --adapters entry, checked to hold a LoRA adapter."""
    return require_adapter(resolve_model_ref(path, f"--adapters {name}="), f"--adapters {name}=")
