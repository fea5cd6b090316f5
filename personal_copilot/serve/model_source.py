"""What `--model` points at: a hub id, a model directory, or a `pcopilot train` run directory (whose
pcopilot_config.yaml names the base model, and which holds a LoRA adapter or a fully fine-tuned model)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from personal_copilot.configs import CONFIG_FILE, read_run_config
from personal_copilot.errors import PcopilotError
from personal_copilot.modeling import has_tokenizer

ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class ModelSource:
    base: str
    """Hub id or directory of the base model's weights."""
    adapter: str | None
    """Directory of the run's LoRA adapter (None: the weights are the model)."""
    tokenizer: str
    family: str | None
    """FIM family the run was trained with."""
    name: str
    """Default served name."""
    base_name: str
    """Name of the bare base model."""


def _display_name(model: str) -> str:
    path = Path(model)
    return path.resolve().name if path.is_dir() else model


def resolve_model(model: str) -> ModelSource:
    """Where the weights, adapter and tokenizer of `--model` are.

    Raises:
        PcopilotError: a directory made by another stage, or a path that does not exist.
    """
    path = Path(model).expanduser()
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        run = read_run_config(path)
        if run.get("stage") != "train" or not run.get("base_model"):
            raise PcopilotError(
                f"{path} was made by `pcopilot {run.get('stage')}`, not `pcopilot train`; give --model a training "
                "run, a model directory or a hub id"
            )
        tokenizer = str(path) if has_tokenizer(path) else run["base_model"]
        name = path.resolve().name
        if (path / ADAPTER_CONFIG).is_file():
            base = run["base_model"]
            return ModelSource(base, str(path), tokenizer, run.get("family"), name, _display_name(base))
        return ModelSource(str(path), None, tokenizer, run.get("family"), name, name)
    if path.is_dir():
        if (path / ADAPTER_CONFIG).is_file():
            raise PcopilotError(
                f"{path} holds a LoRA adapter, not a model: serve its base with --model BASE --adapters NAME={path}, "
                "or the training run directory it came from"
            )
        return ModelSource(str(path), None, str(path), None, path.resolve().name, path.resolve().name)
    if model.startswith((".", "/", "~")) or path.exists():
        raise PcopilotError(f"--model {model!r}: no such directory; give a model directory, a run or a hub id")
    return ModelSource(model, None, model, None, model, model)


def check_adapter(name: str, path: str) -> Path:
    """The directory of an --adapters entry, checked to hold a PEFT adapter."""
    directory = Path(path).expanduser()
    if not (directory / ADAPTER_CONFIG).is_file():
        raise PcopilotError(
            f"--adapters {name}={path}: no {ADAPTER_CONFIG} there; give the directory of a LoRA adapter "
            "(e.g. a `pcopilot train --method lora` run)"
        )
    return directory
