"""What a `--model`, `--base` or `--adapter` value names, answered once for every stage, and how it is loaded.

`resolve_model_ref(value)` turns any value into a `ModelRef`: a hub id, a model folder (a plain Hugging Face folder,
a full fine-tuning run, a merged model), a LoRA adapter folder (a plain PEFT folder, a `pcopilot train` LoRA run, the
output of `adapters combine | scale | transfer`), a quickstart run (the model it produced), or `base` (the embedded
default base, `personal_copilot.base.base_model_dir()`). Base, adapter, tokenizer and family are resolved there, from
the folder's `RunRecord` when it has one. `load_model_ref` loads the base, grows its vocabulary to the tokenizer and
loads one or several adapters, with the same error messages everywhere. Stages add their own policy on top.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from personal_copilot.base import BASE_ALIAS, base_model_dir, measured_fim_layout
from personal_copilot.configs import RunRecord, read_run_record
from personal_copilot.errors import PcopilotError
from personal_copilot.modeling import (
    Attention,
    ConcretePrecision,
    has_tokenizer,
    load_model,
    workaround_peft_is_gradient_checkpointing,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

ADAPTER_CONFIG = "adapter_config.json"
MODEL_CONFIG = "config.json"
QUICKSTART_MODEL_DIR = "run"
"""Where a quickstart run keeps its fine-tuned model when its record does not say (`RunRecord.model_dir`)."""


@dataclass(frozen=True)
class ModelRef:
    """A model as a stage loads it: base weights, optionally a LoRA adapter on them, a tokenizer and a FIM family."""

    value: str
    """What the user gave."""
    kind: Literal["hub", "model", "adapter"]
    """hub: a hub id; model: a folder with the whole model; adapter: a folder with a LoRA adapter."""
    base: str
    """Hub id or folder of the weights to load (the model itself, or the adapter's base)."""
    tokenizer: str
    """Hub id or folder of the tokenizer (the adapter's or model's own when it has one)."""
    adapter: Path | None = None
    """The LoRA adapter folder (kind adapter)."""
    family: str | None = None
    """The FIM family a stage recorded (None: detect it from the tokenizer)."""
    record: RunRecord | None = None
    """The folder's run record (None for hub ids and folders from elsewhere)."""

    @property
    def path(self) -> Path | None:
        """The folder the value names (None for a hub id)."""
        return None if self.kind == "hub" else Path(self.adapter or self.base)

    @property
    def name(self) -> str:
        """A short name of what the user gave (see `short_name`): a quickstart run is called after its own folder,
        not after the model folder inside it."""
        return short_name(self.value)

    @property
    def made_by(self) -> str:
        """`pcopilot STAGE` that made the folder, or where it comes from."""
        if self.record is not None:
            return f"`pcopilot {self.record.stage}`"
        return "the Hugging Face Hub" if self.kind == "hub" else "outside pcopilot"


def fim_layout(base: str, chosen: Literal["psm", "spm"] | None = None) -> Literal["psm", "spm"]:
    """The layout of the FIM prompts a model on `base` gets: `chosen` (a flag), else the one the base was measured
    best in (the embedded base's record says, SPM for a model too small to look back across the suffix), else PSM,
    which code models are usually prompted in and editors send (the server re-orders a client's sentinels)."""
    return chosen or measured_fim_layout(base) or "psm"


def short_name(model: str) -> str:
    """What to call a model in lists and served names: `base` for the embedded base; a folder's name (a folder named
    `base` that is not the embedded base: PARENT-base); the last part of a hub id."""
    path = Path(model).expanduser()
    if model == BASE_ALIAS or (path.is_dir() and path.resolve() == base_model_dir().resolve()):
        return BASE_ALIAS
    if not path.is_dir() and not looks_local(model):
        return model.rpartition("/")[2]
    folder = Path(os.path.abspath(path))  # a symlink keeps the name it was given
    return f"{folder.parent.name}-{folder.name}" if folder.name == BASE_ALIAS else folder.name


def looks_local(value: str) -> bool:
    """True when `value` can only be a path: it starts with `.`, `~` or `/`, has a `/` that is not exactly one
    between owner and name, or names a folder that exists as its parent."""
    if value.startswith((".", "~", "/")):
        return True
    if "/" not in value:
        return False
    owner, _, name = value.partition("/")
    return not owner or not name or "/" in name or Path(owner).is_dir()


def resolve_model_ref(value: str, flag: str = "--model") -> ModelRef:
    """The model `value` names (see the module docstring); `flag` names the option in messages.

    Raises:
        PcopilotError: a path that does not exist, a folder that holds no model or adapter (with what it holds), an
            adapter whose base cannot be found, or `base` when the embedded base is not installed.
    """
    folder = locate_folder(value, flag)
    if folder is None:
        return ModelRef(value=value, kind="hub", base=value, tokenizer=value)
    return _resolve_folder(value, folder, flag)


def locate_folder(value: str, flag: str = "--model") -> Path | None:
    """The folder `value` names: the embedded base for `base`, a quickstart run's model folder for the run, the
    folder itself (`~` expanded, resolved); None for a hub id.

    Raises:
        PcopilotError: a path that does not exist, or `base` when the embedded base is not installed.
    """
    if value == BASE_ALIAS:
        folder = base_model_dir()
        if not (folder / MODEL_CONFIG).is_file():
            raise PcopilotError(
                f"{flag} {BASE_ALIAS}: the embedded base model is not at {folder}; build it with `pcopilot base "
                "build`, or point PCOPILOT_BASE_MODEL at a model folder"
            )
        return folder.resolve()
    path = Path(value).expanduser()
    if path.is_dir():
        record = read_run_record(path)
        inner = (
            (record.model_dir or (QUICKSTART_MODEL_DIR if record.stage == "quickstart" else None)) if record else None
        )
        return (path / inner).resolve() if inner and (path / inner).is_dir() else path.resolve()
    if path.exists() or looks_local(value):
        raise PcopilotError(
            f"{flag} {value}: no such directory: give a model or adapter folder, a run folder, a hub id "
            f"(owner/name) or {BASE_ALIAS}"
        )
    return None


def _resolve_folder(value: str, path: Path, flag: str) -> ModelRef:
    record = read_run_record(path)
    if (path / ADAPTER_CONFIG).is_file():
        return _resolve_adapter(value, path, record, flag)
    if (path / MODEL_CONFIG).is_file():
        tokenizer = str(path)  # loading says what is missing when it has none and its record names none
        if not has_tokenizer(path) and record and (record.tokenizer or record.base_model):
            tokenizer = record.tokenizer or resolve_model_ref(record.base_model, flag).tokenizer
        return ModelRef(value, "model", str(path), tokenizer, family=record.family if record else None, record=record)
    raise PcopilotError(f"{flag} {path}: {_what_it_holds(path, record)}")


def _resolve_adapter(value: str, path: Path, record: RunRecord | None, flag: str) -> ModelRef:
    recorded = record.base_model if record and record.base_model else _peft_base(path)
    if not recorded:
        raise PcopilotError(f"{flag} {path}: the adapter does not name its base model; give the base with --base")
    try:
        base = resolve_model_ref(recorded, f"the base of {path}")
    except PcopilotError as error:
        raise PcopilotError(f"{flag} {path}: {error}; give the base model explicitly") from error
    if base.kind == "adapter":
        raise PcopilotError(f"{flag} {path}: its recorded base {recorded} is itself an adapter")
    tokenizer = str(path) if has_tokenizer(path) else base.tokenizer
    family = (record.family if record else None) or base.family
    return ModelRef(value, "adapter", base.base, tokenizer, adapter=path, family=family, record=record)


def _peft_base(adapter: Path) -> str | None:
    return json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")


def _what_it_holds(path: Path, record: RunRecord | None) -> str:
    """Why a folder is not a model, and what to give instead."""
    if record is not None:
        return f"this is the output of `pcopilot {record.stage}`, not a model: give a model, an adapter or a run"
    nested = sorted(p.parent.name for p in path.glob(f"*/{ADAPTER_CONFIG}")) + sorted(
        p.parent.name for p in path.glob(f"*/{MODEL_CONFIG}")
    )
    if nested:
        return f"the models are in sub-folders: {', '.join(nested)} (give {path / nested[0]})"
    return f"neither a model ({MODEL_CONFIG}) nor a LoRA adapter ({ADAPTER_CONFIG}) is there"


def require_model(ref: ModelRef, flag: str, advice: str) -> ModelRef:
    """`ref` when it is a whole model (hub id or model folder); else fails with `advice` (what to give instead)."""
    if ref.kind == "adapter":
        raise PcopilotError(f"{flag} {ref.value} is a LoRA adapter (made by {ref.made_by}), not a model: {advice}")
    return ref


def require_adapter(ref: ModelRef, flag: str) -> Path:
    """The adapter folder of `ref`; fails when it is a model."""
    if ref.adapter is None:
        raise PcopilotError(
            f"{flag} {ref.value} is a whole model, not a LoRA adapter: give it as --model, or give the folder of a "
            "LoRA adapter (a `pcopilot train --method lora` run, an `adapters combine` output)"
        )
    return ref.adapter


def resolve_model_and_adapter(model: str | None, adapter: str | None) -> ModelRef:
    """What `--model` and `--adapter` name together: the adapter on the model (a whole model, not one that brings its
    own adapter), or either alone (an adapter alone goes on the base it records).

    Raises:
        PcopilotError: neither given, --adapter is a whole model, or --model brings its own adapter.
    """
    if model is None and adapter is None:
        raise PcopilotError("give --model: a hub id, a model or adapter folder, a run folder, or base")
    model_ref = resolve_model_ref(model) if model is not None else None
    if adapter is None:
        return model_ref
    adapter_ref = resolve_model_ref(adapter, "--adapter")
    adapter_dir = require_adapter(adapter_ref, "--adapter")
    if model_ref is None:
        return adapter_ref
    require_model(model_ref, "--model", f"give --adapter only with a base model (e.g. --model {model_ref.base})")
    tokenizer = adapter_ref.tokenizer if has_tokenizer(adapter_dir) else model_ref.tokenizer
    family = adapter_ref.family or model_ref.family
    return ModelRef(adapter, "adapter", model_ref.base, tokenizer, adapter_dir, family, adapter_ref.record)


def tokenizer_size(folder: str | Path) -> int | None:
    """Vocabulary of the tokenizer saved in `folder` (a chat run adds tokens to its base's), None without one."""
    if not has_tokenizer(folder):
        return None
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(str(folder)))


def grow_vocabulary(model: PreTrainedModel, size: int | None, mean_resizing: bool = True) -> None:
    """Grows the embeddings to `size` as `pcopilot train` did for a chat run (new rows at the mean of the old ones;
    trained rows come from the adapter). Never shrinks: a vocabulary padded beyond the tokenizer stays."""
    if size and size > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(size, mean_resizing=mean_resizing)


def load_base_model(
    base: str,
    *,
    precision: ConcretePrecision,
    vocabulary: int | None = None,
    adapters: Iterable[str | Path] = (),
    attention: Attention = "sdpa",
) -> Any:
    """The base model in `precision`, its vocabulary grown to `vocabulary` (the tokenizer's) and to the tokenizer of
    every adapter folder in `adapters` that has one (a chat run's)."""
    model = load_model(base, precision=precision, attention=attention)
    grow_vocabulary(model, max([vocabulary or 0, *(tokenizer_size(p) or 0 for p in adapters)]))
    return model


def load_model_ref(
    base: str,
    adapters: dict[str, str | Path],
    *,
    precision: ConcretePrecision,
    vocabulary: int | None = None,
    attention: Attention = "sdpa",
) -> Any:
    """`load_base_model` with `adapters` ({name: folder}) loaded side by side (a PeftModel when there are any).

    Raises:
        PcopilotError: the base or an adapter cannot be loaded (with the base and adapter named).
    """
    model = load_base_model(
        base, precision=precision, vocabulary=vocabulary, adapters=adapters.values(), attention=attention
    )
    return load_adapters(model, adapters, base)


def load_adapters(model: Any, adapters: dict[str, str | Path], base: str) -> Any:
    """`model` with each adapter of `adapters` ({name: folder}) loaded under its name."""
    from peft import PeftModel

    for name, folder in adapters.items():
        try:
            if isinstance(model, PeftModel):
                model.load_adapter(str(folder), adapter_name=name)
            else:
                with workaround_peft_is_gradient_checkpointing():
                    model = PeftModel.from_pretrained(model, str(folder), adapter_name=name)
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            raise PcopilotError(f"cannot load adapter {name!r} from {folder} onto {base}: {error}") from error
    return model
