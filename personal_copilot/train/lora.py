"""LoRA target modules per architecture (`config.model_type`), and the mapping of our settings to PEFT's config."""

from __future__ import annotations

_LLAMA_STYLE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

LORA_TARGETS_BY_MODEL_TYPE: dict[str, tuple[str, ...]] = {
    "gpt_bigcode": ("c_attn", "c_proj", "c_fc"),  # StarCoder, SantaCoder, starcoderbase-*
    "starcoder2": ("q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj"),
    "llama": _LLAMA_STYLE,  # CodeLlama
    "qwen2": _LLAMA_STYLE,  # Qwen2.5-Coder
    "qwen3": _LLAMA_STYLE,
    "mistral": _LLAMA_STYLE,
    "gemma": _LLAMA_STYLE,  # CodeGemma
    "gemma2": _LLAMA_STYLE,
}
"""The blog targets GPT-BigCode's attention and MLP projections; Llama-style models get all seven projections."""


def lora_target_modules(model_type: str, override: list[str] | None = None) -> list[str] | str:
    """The modules LoRA adapts: the user's list, the preset of the architecture, or PEFT's `all-linear`."""
    if override:
        return list(override)
    preset = LORA_TARGETS_BY_MODEL_TYPE.get(model_type)
    return list(preset) if preset else "all-linear"
