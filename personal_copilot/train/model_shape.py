"""What `pcopilot estimate` knows of a model: exact parameter counts (LoRA's included) and layer dimensions, read
from its config alone by building it on the meta device (no weights, no memory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from personal_copilot.errors import PcopilotError
from personal_copilot.train.config import LoraSettings
from personal_copilot.train.lora import lora_target_modules
from personal_copilot.train.model_config import load_model_config


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a model: exact parameter counts and the layer dimensions."""

    model_type: str
    params: int
    """All parameters, tied ones counted once."""
    linear_params: int
    """Weights of Linear (and GPT-2 Conv1D) layers, the output head included: the parameters that do matmuls."""
    quantized_params: int
    """Linear weights that QLoRA stores in 4 bits (all but the output head's)."""
    lora_params: int
    """Parameters of a LoRA adapter of the given rank on the target modules (0 when none matched)."""
    lora_targets: list[str]
    """Names of the target modules that matched (their last component)."""
    block_params: int
    """Parameters of the largest transformer block (what FSDP gathers at once)."""
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    gated_mlp: bool
    """SwiGLU-style MLP (gate and up projections) rather than one up projection."""
    rms_norm: bool
    """The norms are RMSNorms (transformers' RMSNorms upcast their input to fp32) rather than LayerNorms."""


def read_model_shape(model: str, lora: LoraSettings | None = None, scratch_vocab_size: int = 8192) -> ModelShape:
    """Reads `model`'s config (see `model_config.load_model_config`) and counts its parameters on the meta device,
    with a LoRA adapter of `lora`'s rank and targets."""
    config = load_model_config(model, scratch_vocab_size)
    lora = lora or LoraSettings()
    key = (config.to_json_string(), lora.r, tuple(lora.target_modules))
    if key not in _SHAPES:
        _SHAPES[key] = _count_shape(config, lora.r, list(lora.target_modules), model)
    return _SHAPES[key]


_SHAPES: dict[tuple[str, int, tuple[str, ...]], ModelShape] = {}
"""Shapes already counted, by config and adapter (building a large model on the meta device takes seconds)."""


def _count_shape(config: Any, r: int, target_modules: list[str], name: str) -> ModelShape:
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError) as error:
        reason = str(error).splitlines()[0]
        raise PcopilotError(f"--model {name!r} is not a causal language model transformers knows: {reason}") from error

    text = config.get_text_config()
    hidden, heads = text.hidden_size, text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or hidden // heads
    kv_heads = getattr(text, "num_key_value_heads", None) or (1 if getattr(text, "multi_query", False) else heads)
    intermediate = getattr(text, "intermediate_size", None) or getattr(text, "n_inner", None) or 4 * hidden
    targets = lora_target_modules(config.model_type, target_modules or None)
    if targets == ["all-linear"]:
        targets = "all-linear"
    linear, quantized, lora_params, targets_found = _count_linear_and_lora(model, targets, r)
    layers = text.num_hidden_layers
    blocks = _blocks(model, layers)
    return ModelShape(
        model_type=config.model_type,
        params=sum(p.numel() for p in model.parameters()),
        linear_params=linear,
        quantized_params=quantized,
        lora_params=lora_params,
        lora_targets=targets_found,
        block_params=max(sum(p.numel() for p in block.parameters()) for block in blocks),
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=text.vocab_size,
        gated_mlp=_up_projection_width(blocks[0], hidden, intermediate) >= 2 * intermediate,
        rms_norm=any("RMSNorm" in type(module).__name__ for module in blocks[0].modules()),
    )


def _in_out(module: Any) -> tuple[int, int] | None:
    """(in, out) features of a Linear or GPT-2 Conv1D layer, else None."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, Conv1D):
        return module.weight.shape[0], module.weight.shape[1]
    return None


def _count_linear_and_lora(model: Any, targets: list[str] | str, r: int) -> tuple[int, int, int, list[str]]:
    """Linear weights, the 4-bit share of them, LoRA parameters of rank `r` and the target names that matched, with
    PEFT's rules: a name matches when it equals a target or ends with `.target`; `all-linear` skips the output head."""
    from torch import nn

    head = model.get_output_embeddings()
    seen: set[int] = set()
    linear = quantized = lora_params = 0
    found: set[str] = set()
    for name, module in model.named_modules():
        shape = _in_out(module)
        if shape is not None and id(module.weight) not in seen:
            seen.add(id(module.weight))
            linear += module.weight.numel()
            quantized += 0 if module is head else module.weight.numel()
        if targets == "all-linear":
            matched = shape is not None and module is not head
        else:
            matched = any(name == t or name.endswith(f".{t}") for t in targets)
        if not matched:
            continue
        if shape is None and isinstance(module, nn.Embedding):
            shape = (module.num_embeddings, module.embedding_dim)
        if shape is None:
            raise PcopilotError(
                f"LoRA target {name!r} is a {type(module).__name__}, not a Linear or Embedding layer: "
                "name its projections in --lora.target_modules instead."
            )
        lora_params += r * (shape[0] + shape[1])
        found.add(name.rsplit(".", 1)[-1])
    return linear, quantized, lora_params, sorted(found)


def _blocks(model: Any, layers: int) -> list[Any]:
    """The transformer blocks: the model's ModuleList with one entry per layer."""
    from torch import nn

    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == layers:
            return list(module)
    raise PcopilotError(f"cannot find the {layers} transformer blocks of {type(model).__name__}")


def _up_projection_width(block: Any, hidden: int, intermediate: int) -> int:
    """Summed width of a block's layers that map hidden -> intermediate (2x intermediate when the MLP is gated)."""
    width = 0
    for module in block.modules():
        shape = _in_out(module)
        if shape and shape[0] == hidden and shape[1] in (intermediate, 2 * intermediate):
            width += shape[1]
    return width
