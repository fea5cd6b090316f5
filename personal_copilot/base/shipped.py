"""Where the shipped base model lives: a Hugging Face model folder inside the package (weights, tokenizer, model card),
so that a clone or `pip install` carries it and nothing is built or downloaded before first use.

`PCOPILOT_BASE_MODEL` points elsewhere (tests use it for a tiny model; a team can set its own default base).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from personal_copilot.errors import PcopilotError

BASE_ALIAS = "base"
"""What `--model base` names in every stage."""
ENV_VAR = "PCOPILOT_BASE_MODEL"
WEIGHTS = "model.safetensors"
RECORD = "base.json"
"""The base's record in its folder: recipe, corpus, training, measurements, sha256 (the card is rendered from it)."""


def shipped_dir() -> Path:
    """The folder of the base model shipped in the package."""
    return Path(__file__).resolve().parent / "model"


def base_model_dir() -> Path:
    """The default base model's folder: `$PCOPILOT_BASE_MODEL`, else the shipped one."""
    override = os.environ.get(ENV_VAR)
    return Path(override).expanduser() if override else shipped_dir()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_base(model_dir: Path) -> dict[str, Any]:
    """The record of a base model folder (`base.json`)."""
    path = model_dir / RECORD
    if not path.is_file():
        raise PcopilotError(
            f"{model_dir} has no {RECORD}: it is not a base made by `pcopilot base build` "
            "(rebuild it with `pcopilot base build --recipe default`)"
        )
    return json.loads(path.read_text())


def measured_fim_layout(model: str | Path) -> Literal["psm", "spm"] | None:
    """The FIM prompt layout a base model folder was measured best in (`fim_layout` in its record), or None for a
    model without a record (a hub id, or a folder not made by `pcopilot base build`)."""
    path = Path(model).expanduser() / RECORD
    return json.loads(path.read_text()).get("fim_layout") if path.is_file() else None
