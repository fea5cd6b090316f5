"""Merging an adapter into its base with PEFT's `merge_and_unload` (W ← W + s · B @ A in every adapted layer), proven
on a short input: the merged model's logits must equal the base-plus-adapter logits, and differ from the base's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from personal_copilot.adapters.inputs import AdapterDir
from personal_copilot.errors import PcopilotError
from personal_copilot.modeling import workaround_peft_is_gradient_checkpointing

if TYPE_CHECKING:
    from transformers import PreTrainedModel

PROBE = "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + "
"""The input the merge is checked on."""


@dataclass
class MergeCheck:
    """Largest logit differences on the probe input."""

    adapter_effect: float
    """Base-plus-adapter against the base: what the adapter changes (0 for an untrained adapter)."""
    merge_error: float
    """Merged model against base-plus-adapter: what the merge got wrong (rounding only)."""

    @property
    def passed(self) -> bool:
        """The merge error is finite and small next to what the adapter changes (under a tenth of it)."""
        return math.isfinite(self.merge_error) and self.merge_error <= 0.1 * self.adapter_effect


def merge_into(
    output: Path, base_model: PreTrainedModel, adapter: AdapterDir, tokenizer: Any, verify: bool
) -> MergeCheck | None:
    """Merges `adapter` into `base_model` and saves the standalone model with `tokenizer` to `output`; with `verify`,
    returns the logit differences on `PROBE`."""
    import torch
    from peft import PeftModel

    with workaround_peft_is_gradient_checkpointing():
        model = PeftModel.from_pretrained(base_model, str(adapter.path))
    probe = tokenizer(PROBE, return_tensors="pt").input_ids.to(base_model.device)
    with torch.no_grad():
        if verify:
            adapted = model(probe).logits.float()
            with model.disable_adapter():
                base = model(probe).logits.float()
        try:
            merged = model.merge_and_unload(safe_merge=True)
        except ValueError as error:  # safe_merge found NaNs
            raise PcopilotError(f"merging {adapter.path} broke the weights: {error}") from error
        check = None
        if verify:
            merged_logits = merged(probe).logits.float()
            check = MergeCheck(
                adapter_effect=(adapted - base).abs().max().item(),
                merge_error=(merged_logits - adapted).abs().max().item(),
            )
    merged.save_pretrained(str(output))
    tokenizer.save_pretrained(str(output))
    return check
