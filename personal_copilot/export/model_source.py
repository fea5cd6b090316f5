"""The HF model directory the converter reads: the model itself when it is a local directory, else the base with the
adapter merged in (or a hub model saved locally).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import ModelRef, resolve_model_and_adapter


def resolve_model_source(model: str, adapter: Path | None = None) -> ModelRef:
    """What `--model` (and `--adapter`) name: `personal_copilot.model_ref`'s answer, with nothing of export's own."""
    return resolve_model_and_adapter(model, str(adapter) if adapter is not None else None)


def _merge_adapter(base: str, adapter: Path, output: Path) -> None:
    """`pcopilot adapters merge` into `output`: QLoRA adapters into the de-quantized base, chat runs' added tokens
    carried, the merge checked by logits."""
    from personal_copilot.adapters import MergeConfig, run_merge

    report = run_merge(MergeConfig(adapter=str(adapter), base=base, output=output, overwrite=True))
    if report.verified is False:
        raise PcopilotError(
            f"merging {adapter} into {base} changed the logits more than expected: {report.merge_error}"
        )


def materialize(source: ModelRef, tokenizer: Any, workdir: Path) -> Path:
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
