"""What `--model` / `--adapter` name (hub id, model directory, adapter directory or training run), and the HF model
directory the converter reads: the model itself when it is a local directory, else the base with the adapter merged
in (or a hub model saved locally).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personal_copilot.configs import CONFIG_FILE, read_run_config
from personal_copilot.errors import PcopilotError
from personal_copilot.modeling import has_tokenizer

ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class ModelSource:
    """A model to export: its base (hub id or directory), the LoRA adapter to merge, where its tokenizer is."""

    base: str
    adapter: Path | None
    tokenizer: str
    family: str | None = None
    """The FIM family a training run recorded."""


def _adapter_base(adapter: Path) -> str:
    base = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise PcopilotError(f"{adapter / ADAPTER_CONFIG} names no base model; pass it with --model")
    return base


def resolve_model_source(model: str, adapter: Path | None = None) -> ModelSource:
    """Reads what `--model` (and `--adapter`) point at.

    Raises:
        PcopilotError: --adapter is not a LoRA adapter directory, or is given with a run that has its own.
    """
    path = Path(model).expanduser()
    run = read_run_config(path) if (path / CONFIG_FILE).is_file() else {}
    family = run.get("family") if run.get("stage") == "train" else None
    own_adapter: Path | None = None
    base = model
    if run.get("stage") == "train":
        if (path / ADAPTER_CONFIG).is_file():
            base, own_adapter = str(run["base_model"]), path
        else:
            base = str(path)  # a full fine-tuning run holds the whole model
    elif (path / ADAPTER_CONFIG).is_file():
        base, own_adapter = _adapter_base(path), path
    if adapter is not None:
        adapter = Path(adapter).expanduser()
        if own_adapter is not None:
            raise PcopilotError(
                f"--model {model} already brings the adapter {own_adapter}; to merge another adapter, pass the base "
                f"model ({base}) as --model, or leave --adapter out"
            )
        if not (adapter / ADAPTER_CONFIG).is_file():
            raise PcopilotError(f"--adapter {adapter} is not a LoRA adapter directory (no {ADAPTER_CONFIG})")
        own_adapter = adapter
    tokenizer = str(own_adapter) if own_adapter and has_tokenizer(own_adapter) else base
    return ModelSource(base=base, adapter=own_adapter, tokenizer=tokenizer, family=family)


def _merge_adapter(base: str, adapter: Path, output: Path) -> None:
    """`pcopilot adapters merge` into `output`: QLoRA adapters into the de-quantized base, chat runs' added tokens
    carried, the merge checked by logits."""
    from personal_copilot.adapters import MergeConfig, run_merge

    report = run_merge(MergeConfig(adapter=str(adapter), base=base, output=output, overwrite=True))
    if report.verified is False:
        raise PcopilotError(
            f"merging {adapter} into {base} changed the logits more than expected: {report.merge_error}"
        )


def materialize(source: ModelSource, tokenizer: Any, workdir: Path) -> Path:
    """The HF model directory to convert: the model's own directory when it is local and has no adapter, else the
    base with the adapter merged (or the hub model) saved with the tokenizer into `workdir`."""
    from transformers import AutoModelForCausalLM

    if source.adapter is None and Path(source.base).is_dir():
        return Path(source.base)
    try:
        if source.adapter is None:
            AutoModelForCausalLM.from_pretrained(source.base, dtype="auto").save_pretrained(workdir)
        else:
            _merge_adapter(source.base, source.adapter, workdir)
    except OSError as error:
        raise PcopilotError(f"cannot load the model {source.base!r}: {error}") from error
    tokenizer.save_pretrained(workdir)
    return workdir
