"""The base model an adapter goes on: loaded in a precision, or as a weightless skeleton for shape checks; in both
cases with the vocabulary grown to the adapter's tokenizer when its run added tokens (as `pcopilot train` did)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import grow_vocabulary
from personal_copilot.modeling import ConcretePrecision, has_cuda, load_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel

_PRECISION_OF_DTYPE = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


def _config(base: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(base)
    except (OSError, ValueError) as error:
        raise PcopilotError(f"cannot read the config of base model {base!r}: {error}") from error


def declared_precision(base: str) -> ConcretePrecision:
    """The precision the base checkpoint declares (`dtype` in its config.json), fp32 when it declares none."""
    dtype = getattr(_config(base), "dtype", None)
    return _PRECISION_OF_DTYPE.get(str(dtype).removeprefix("torch."), "fp32")


def load_base(
    base: str, precision: ConcretePrecision, vocabulary: int | None = None, dequantized: bool = False
) -> PreTrainedModel:
    """The base model in `precision`, its vocabulary grown to `vocabulary` (an adapter run's tokenizer) if larger.
    With `dequantized`, its weights are those a QLoRA run computed with: quantized to 4-bit NF4 as `pcopilot train
    --method qlora` does, then de-quantized to `precision`."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per loaded shard; the command's summary says what happened
    if dequantized and importlib.util.find_spec("bitsandbytes") is None:
        raise PcopilotError(
            "merging a QLoRA adapter into its base as training saw it (4-bit, de-quantized) needs bitsandbytes: "
            "pip install 'personal-copilot[qlora]', or pass --qlora_base original"
        )
    model = load_model(base, precision=precision, quantize_4bit=dequantized)
    if dequantized:
        model = model.dequantize()
    grow_vocabulary(model, vocabulary)
    return model


def base_skeleton(base: str, vocabulary: int | None = None) -> PreTrainedModel:
    """The base model's modules with their sizes and no weights (meta device): only its config.json is read."""
    import torch
    from transformers import AutoModelForCausalLM

    config = _config(base)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    grow_vocabulary(model, vocabulary, mean_resizing=False)  # the mean needs values, which meta tensors lack
    return model


def to_gpu_if_it_fits(model: PreTrainedModel) -> None:
    """Moves the model to the GPU when there is one with room for it (merging there is faster), else leaves it."""
    import torch

    if not has_cuda() or model.device.type == "cuda":
        return
    free, _ = torch.cuda.mem_get_info()
    if model.get_memory_footprint() < 0.8 * free:
        model.to("cuda")
