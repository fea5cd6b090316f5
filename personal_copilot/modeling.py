"""Loading tokenizers and causal LMs: hub ids, local paths, `scratch:` models built from config, 4-bit quantization
and the attention backend. The one place that knows how models are loaded; torch and transformers are imported
inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from personal_copilot.errors import PcopilotError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Precision = Literal["auto", "bf16", "fp16", "fp32"]
"""auto: bf16 on GPUs that have it, fp16 on older GPUs, fp32 on CPU (or, where a checkpoint is written, its own)."""
ConcretePrecision = Literal["bf16", "fp16", "fp32"]
Attention = Literal["sdpa", "flash_attention_2", "eager"]
SCRATCH_PREFIX = "scratch:"


@dataclass(frozen=True)
class ScratchPreset:
    """A small model initialised from config (dims are multiples of 64, which bitsandbytes' CPU kernels need)."""

    model_type: Literal["llama", "gpt_bigcode"]
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int


SCRATCH_PRESETS: dict[str, ScratchPreset] = {
    "tiny": ScratchPreset("llama", hidden=128, intermediate=384, layers=2, heads=4, kv_heads=2),
    "mini": ScratchPreset("llama", hidden=256, intermediate=768, layers=4, heads=4, kv_heads=2),
    "base": ScratchPreset("llama", hidden=256, intermediate=768, layers=6, heads=4, kv_heads=2),
    "small": ScratchPreset("llama", hidden=512, intermediate=1408, layers=6, heads=8, kv_heads=4),
    "tiny-starcoder": ScratchPreset("gpt_bigcode", hidden=128, intermediate=512, layers=2, heads=4, kv_heads=1),
}


def is_scratch(model: str) -> bool:
    return model.startswith(SCRATCH_PREFIX)


def scratch_preset(model: str) -> ScratchPreset:
    name = model.removeprefix(SCRATCH_PREFIX)
    if name not in SCRATCH_PRESETS:
        raise PcopilotError(
            f"unknown scratch model {model!r}; choose one of: scratch:{', scratch:'.join(SCRATCH_PRESETS)}"
        )
    return SCRATCH_PRESETS[name]


def scratch_config(model: str, vocab_size: int, max_positions: int, special_tokens: dict[str, int | None]) -> Any:
    """The transformers config of a `scratch:` preset with `vocab_size` entries (no weights)."""
    from transformers import GPTBigCodeConfig, LlamaConfig

    preset = scratch_preset(model)
    if preset.model_type == "llama":
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=preset.hidden,
            intermediate_size=preset.intermediate,
            num_hidden_layers=preset.layers,
            num_attention_heads=preset.heads,
            num_key_value_heads=preset.kv_heads,
            max_position_embeddings=max_positions,
            tie_word_embeddings=True,
            **special_tokens,
        )
    return GPTBigCodeConfig(
        vocab_size=vocab_size,
        n_embd=preset.hidden,
        n_inner=preset.intermediate,
        n_layer=preset.layers,
        n_head=preset.heads,
        multi_query=preset.kv_heads == 1,
        n_positions=max_positions,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **special_tokens,
    )


def build_scratch_model(
    model: str, tokenizer: PreTrainedTokenizerBase, max_positions: int, seed: int
) -> PreTrainedModel:
    """A randomly initialised causal LM of a `scratch:` preset, sized to the tokenizer, seeded."""
    import torch
    from transformers import AutoModelForCausalLM

    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    special["pad_token_id"] = tokenizer.pad_token_id
    config = scratch_config(model, len(tokenizer), max_positions, special)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_precision(precision: Precision) -> ConcretePrecision:
    """`auto` is bf16 on a GPU that supports it, fp16 on an older GPU, fp32 on CPU (bf16 on CPU is opt-in)."""
    import torch

    if precision != "auto":
        if precision == "fp16" and not has_cuda():
            raise PcopilotError("--precision fp16 needs a CUDA GPU; use fp32 (or bf16 on a CPU with AVX-512 BF16)")
        return precision
    if not has_cuda():
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def cpu_precision() -> Literal["auto", "bf16", "fp32"]:
    """For small trainings that must run anywhere: `auto` on a GPU; on a CPU, bf16 autocast where the CPU computes in
    it (AVX-512 BF16 or AMX: ~2.6x fp32), else fp32."""
    if has_cuda():
        return "auto"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if "avx512_bf16" in flags or "amx_bf16" in flags else "fp32"


def torch_dtype(precision: ConcretePrecision) -> torch.dtype:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def check_attention(attention: Attention) -> None:
    """Fails early, with what to do, when flash-attention is asked for where it cannot run."""
    if attention != "flash_attention_2":
        return
    if not has_cuda():
        raise PcopilotError("--attn_implementation flash_attention_2 needs a CUDA GPU; use sdpa (the default) on CPU")
    try:
        import flash_attn  # noqa: F401
    except ImportError as error:
        raise PcopilotError(
            "--attn_implementation flash_attention_2 needs the flash-attn package: "
            "pip install 'personal-copilot[flash]' (builds against your CUDA), or use sdpa"
        ) from error


def quantization_config(compute_precision: ConcretePrecision) -> Any:
    """The QLoRA recipe: 4-bit NF4 with double quantization, computing in bf16 (or the given precision)."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise PcopilotError(
            "--method qlora needs bitsandbytes: pip install 'personal-copilot[qlora]' "
            "(CUDA GPUs; recent releases also run on CPU)"
        ) from error
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch_dtype(compute_precision),
    )


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def has_tokenizer(directory: str | Path) -> bool:
    """True when `directory` holds a tokenizer of its own (a run or adapter saved with one)."""
    return any((Path(directory) / name).is_file() for name in TOKENIZER_FILES)


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """A tokenizer from a hub id or a local directory; gives it a pad token when it has none."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise PcopilotError(f"cannot load a tokenizer from {name_or_path!r}: {error}") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    name_or_path: str,
    *,
    precision: ConcretePrecision,
    attention: Attention = "sdpa",
    quantize_4bit: bool = False,
) -> PreTrainedModel:
    """A causal LM from a hub id or local directory, in `precision`, optionally 4-bit quantized (QLoRA)."""
    from transformers import AutoModelForCausalLM

    check_attention(attention)
    options: dict[str, Any] = {"dtype": torch_dtype(precision), "attn_implementation": attention}
    if quantize_4bit:
        options["quantization_config"] = quantization_config(precision)
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        options["device_map"] = {"": local_rank} if has_cuda() else {"": "cpu"}
    try:
        return AutoModelForCausalLM.from_pretrained(name_or_path, **options)
    except OSError as error:
        raise PcopilotError(f"cannot load a model from {name_or_path!r}: {error}") from error


def context_length(model: Any) -> int | None:
    """The longest sequence `model` (or its config) takes, None when its config does not say."""
    config = getattr(model, "config", model)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@contextmanager
def workaround_peft_is_gradient_checkpointing() -> Iterator[None]:
    """Wraps a model in PEFT (`get_peft_model`, `PeftModel.from_pretrained`) without transformers' FutureWarning
    "`is_gradient_checkpointing` is deprecated …" on every load.

    The cause is PEFT (0.21), not us: `PeftModel.__init__` reads `model.is_gradient_checkpointing`, which
    transformers 5 deprecated for `is_activation_checkpointing` (peft/peft_model.py; the same in mixed_model.py;
    upstream: https://github.com/huggingface/peft, to be reported). Only that one warning, from that one read, is
    ignored; `tests/test_modeling_warnings.py` shows the bug and fails once PEFT no longer has it, so that this
    workaround can go.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield
