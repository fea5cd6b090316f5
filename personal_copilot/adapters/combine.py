"""Combining LoRA adapters with PEFT's `add_weighted_adapter`, saved as a plain adapter folder.

For adapters i with weights wᵢ, LoRA factors Aᵢ (r x in), Bᵢ (out x r) and scalings sᵢ = alphaᵢ / rᵢ, the result
has scaling 1 (alpha = r) and, in peft 0.21:

- cat:    A = [w₁s₁A₁; w₂s₂A₂; …], B = [B₁ B₂ …], so B @ A = Σ wᵢ sᵢ Bᵢ Aᵢ exactly; rank Σ rᵢ.
- linear: A = Σ sign(wᵢsᵢ) √|wᵢsᵢ| Aᵢ, B = Σ √|wᵢsᵢ| Bᵢ (equal ranks); B @ A = Σ wᵢ sᵢ Bᵢ Aᵢ plus the cross terms
          √|wⱼsⱼ| sign(wᵢsᵢ) √|wᵢsᵢ| Bⱼ Aᵢ for i ≠ j: exact for one adapter, not a weighted sum for several.
- svd:    the rank-k truncated SVD of Σ wᵢ sᵢ Bᵢ Aᵢ (k = --svd_rank, default the largest rank).
- ties / dare_* / magnitude_prune: linear with the factors sparsified (the *_svd ones: svd of the sparsified sum).

Trained token embeddings (the rows of tokens a chat run added) are not updates and PEFT cannot combine them: one
adapter may carry them, and they are copied into the result unchanged (the blog's code buddy: copilot + assistant).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from personal_copilot.adapters.config import CombineConfig
from personal_copilot.adapters.inputs import ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterDir
from personal_copilot.modeling import workaround_peft_is_gradient_checkpointing

if TYPE_CHECKING:
    from torch import nn

COMBINED = "default"
"""PEFT writes the adapter of this name at the folder's root (any other name goes into a sub-folder)."""
TOKEN_ROWS = ".token_adapter."
"""In the name of the tensors of trained token embeddings."""


def _without_token_rows(adapter: AdapterDir, folder: Path) -> AdapterDir:
    """A copy of `adapter` in `folder` without its trained token rows: its low-rank updates only."""
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True)
    tensors = load_file(str(adapter.path / ADAPTER_WEIGHTS))
    save_file({k: v for k, v in tensors.items() if TOKEN_ROWS not in k}, str(folder / ADAPTER_WEIGHTS))
    lora = {**adapter.lora, "trainable_token_indices": None}
    (folder / ADAPTER_CONFIG).write_text(json.dumps(lora), encoding="utf-8")
    return AdapterDir(path=folder, lora=lora, run=adapter.run)


def _add_token_rows(output: Path, carrier: AdapterDir) -> None:
    """Adds the trained token rows of `carrier`, and their token ids, to the adapter saved in `output`."""
    from safetensors.torch import load_file, save_file

    rows = {k: v for k, v in load_file(str(carrier.path / ADAPTER_WEIGHTS)).items() if TOKEN_ROWS in k}
    combined = load_file(str(output / ADAPTER_WEIGHTS))
    save_file({**combined, **rows}, str(output / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    lora = json.loads((output / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    lora["trainable_token_indices"] = carrier.trainable_token_indices
    (output / ADAPTER_CONFIG).write_text(json.dumps(lora, indent=2) + "\n", encoding="utf-8")


def combine_into(
    output: Path, base_model: nn.Module, adapters: list[AdapterDir], weights: list[float], config: CombineConfig
) -> None:
    """Loads `adapters` onto `base_model`, combines them with `weights` by `config.method` and saves the result to
    `output` as its only adapter (with the trained token rows of the one adapter that may have them)."""
    import torch
    from peft import PeftModel

    carriers = [a for a in adapters if a.trainable_token_indices]
    names = [f"input{i}" for i in range(len(adapters))]
    with tempfile.TemporaryDirectory(prefix="pcopilot-combine-") as scratch:
        updates = [
            _without_token_rows(a, Path(scratch) / name) if a.trainable_token_indices else a
            for name, a in zip(names, adapters, strict=True)
        ]
        with workaround_peft_is_gradient_checkpointing():
            model = PeftModel.from_pretrained(base_model, str(updates[0].path), adapter_name=names[0])
        for name, adapter in zip(names[1:], updates[1:], strict=True):
            model.load_adapter(str(adapter.path), adapter_name=name)
    torch.manual_seed(config.seed)  # the dare_* methods drop values at random
    model.add_weighted_adapter(
        names,
        weights,
        COMBINED,
        combination_type=config.method,
        svd_rank=config.svd_rank,
        density=config.density,
        majority_sign_method=config.majority_sign_method,
    )
    # Workaround for huggingface/peft#3449 / #3761: the combined config inherits use_rslora from the first adapter,
    # although every method already folds each adapter's scaling into the factors and sets alpha = r for a scaling
    # of 1; with use_rslora the saved adapter would act sqrt(r) times too strongly.
    model.peft_config[COMBINED].use_rslora = False
    # The grown embedding matrices come with the token rows (below), not from PEFT's save of the grown base.
    model.save_pretrained(str(output), selected_adapters=[COMBINED], save_embedding_layers=False)
    if carriers:
        _add_token_rows(output, carriers[0])
