"""Scaling an adapter's update by a weight: every B factor (and B bias) times the weight, nothing else changed.

The update of a LoRA layer is s · B @ A, so w · B gives w times the update at the same rank, alpha and variant
(rslora included), exactly, without loading the base model. PEFT's `add_weighted_adapter([adapter], [w])` gives the
same update (its one-adapter `linear` case) but needs the base in memory and rewrites alpha to r.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from personal_copilot.adapters.inputs import ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterDir

_B_FACTOR = re.compile(r"\.(lora_B\.(weight|bias)|lora_embedding_B)$")


def scale_into(output: Path, adapter: AdapterDir, weight: float) -> int:
    """Writes `adapter` with its update scaled by `weight` to `output`; returns how many tensors were scaled."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(adapter.path / ADAPTER_WEIGHTS))
    scaled = [name for name in tensors if _B_FACTOR.search(name)]
    for name in scaled:
        tensors[name] = (tensors[name].double() * weight).to(tensors[name].dtype)
    save_file(tensors, str(output / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    (output / ADAPTER_CONFIG).write_text(json.dumps(adapter.lora, indent=2) + "\n", encoding="utf-8")
    return len(scaled)
