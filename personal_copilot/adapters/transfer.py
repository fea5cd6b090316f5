"""Re-targeting an adapter to another base: every tensor checked against the new base's modules and sizes (read from
its config alone, no weights), then the same weights saved with the new base recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from personal_copilot.adapters.base_model import base_skeleton
from personal_copilot.adapters.checks import adapted_modules, check_fits, refuse_base_copies_elsewhere
from personal_copilot.adapters.inputs import ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterDir, tokenizer_length


def check_transfer(adapter: AdapterDir, base: str) -> int:
    """Fails, naming the modules and sizes, when `adapter` does not fit `base` or holds whole weights of its own base;
    returns how many modules it adapts."""
    refuse_base_copies_elsewhere(adapter, base)
    check_fits(adapter, base_skeleton(base, tokenizer_length(adapter)), base)
    return len(adapted_modules(adapter.tensor_shapes()))


def write_transferred(output: Path, adapter: AdapterDir, base: str) -> None:
    """The adapter's weights, unchanged, with `base` as the base PEFT loads it onto."""
    shutil.copy2(adapter.path / ADAPTER_WEIGHTS, output / ADAPTER_WEIGHTS)
    lora = {**adapter.lora, "base_model_name_or_path": base}
    (output / ADAPTER_CONFIG).write_text(json.dumps(lora, indent=2) + "\n", encoding="utf-8")
