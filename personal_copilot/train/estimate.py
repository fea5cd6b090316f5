"""`pcopilot estimate`: GPU memory, time and cost of fine-tuning a model, from its config alone.

    pcopilot estimate --model bigcode/starcoder --method full --gpus 8 --batch_size 1

The model is built on the meta device (no weights, no memory) so that parameters are counted exactly, LoRA's
included. Memory per GPU, in GB of 1e9 bytes like the blog (docs/estimate.md has the derivation):

- weights: 2 B/param in bf16 (full, lora); qlora keeps Linear weights in 4-bit NF4 (0.5 B/param plus 0.016 B of
  double-quantized block constants) and embeddings, norms, biases and the output head in bf16. LoRA adds its own
  2 B/param. FSDP adds two gathered transformer blocks (the current one and the prefetched one).
- gradients: 2 B per trainable parameter (bf16); DDP keeps a second copy in its all-reduce buckets.
- optimizer states: AdamW's fp32 master weight, m and v: 12 B per trainable parameter. With the two lines above a
  trainable parameter costs 16 B: the blog's "15.5B x 16 = 248 GB" for full fine-tuning.
- activations of one micro-batch (bf16), per transformer layer after Korthikanti et al. 2022 ("Reducing Activation
  Recomputation in Large Transformer Models"), s·b·h·(34 + 5·a·s/h) bytes for GPT-3-style layers, generalized here
  to grouped/multi-query attention and the MLP's real width and gating; FlashAttention drops the 5·a·s²·b term.
  Gradient checkpointing keeps each layer's input (2·s·b·h) and recomputes one layer at a time. The output head
  adds 10 B per logit (bf16 logits, their fp32 copy for the loss, log-softmax saved for backward).
- overhead: a constant (--overhead_gb) for the CUDA context, workspaces and fragmentation.

fsdp divides weights, gradients and optimizer states by --gpus; activations depend on the per-GPU batch only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personal_copilot.configs import write_report, write_run_config
from personal_copilot.console import print_summary, print_table, stdout
from personal_copilot.errors import PcopilotError
from personal_copilot.train.estimate_config import EstimateConfig, LoraSettings
from personal_copilot.train.lora import lora_target_modules

GB = 1e9
FROZEN_WEIGHT_BYTES = {"full": 2.0, "lora": 2.0, "qlora": 0.5}
"""Bytes per base parameter the blog's rule of thumb uses (full: the weight part of its 16 B)."""
NF4_CONSTANT_BYTES = (8 / 64 + 32 / (64 * 256)) / 8
"""Per 4-bit weight: an 8-bit absmax per block of 64, and an fp32 constant per 256 absmaxes (double quantization)."""
TRAINABLE_WEIGHT_BYTES, GRADIENT_BYTES, OPTIMIZER_BYTES = 2.0, 2.0, 12.0
"""A trainable parameter: bf16 weight and gradient; AdamW's fp32 master copy, m and v."""
LOGIT_BYTES = 10.0
"""Per logit: bf16 output of the head, its fp32 copy for the loss, the fp32 log-softmax kept for backward."""


@dataclass(frozen=True)
class Gpu:
    memory_gb: float
    """Nominal memory (cards sold as "80GB" have 80 GiB = 85.9 GB: the nominal figure leaves a margin)."""
    bf16_tflops: float
    """Dense bf16 tensor-core peak (T4: fp16, it has no bf16)."""


GPUS: dict[str, Gpu] = {
    "T4": Gpu(16, 65),
    "L4": Gpu(24, 121),
    "A10": Gpu(24, 125),
    "RTX-4090": Gpu(24, 165),
    "A100-40GB": Gpu(40, 312),
    "A100-80GB": Gpu(80, 312),
    "H100-80GB": Gpu(80, 989),
    "H200": Gpu(141, 989),
}
FSDP_WORLD_SIZES = (1, 2, 4, 8, 16, 32, 64)
"""GPU counts tried for the "GPUs needed" column."""


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
    """Parameters of a LoRA adapter of the given rank on the target modules."""
    lora_targets: list[str]
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


@dataclass
class Memory:
    """Bytes per GPU, in GB."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    overhead: float
    total: float = 0.0

    def __post_init__(self) -> None:
        self.total = self.weights + self.gradients + self.optimizer + self.activations + self.overhead


@dataclass
class GpuFit:
    gpu: str
    memory_gb: float
    without_checkpointing: str
    """`yes`, `tight` (over 90% of the memory) or `no`, with --gpus and --sharding as given."""
    with_checkpointing: str
    gpus_needed: int | None
    """Fewest GPUs of this type (1, 2, 4, … 64) that fit the run with FSDP and gradient checkpointing."""


@dataclass
class EstimateReport:
    model: str
    model_type: str
    method: str
    params: int
    trainable_params: int
    quantized_params: int
    lora_targets: list[str]
    seq_len: int
    batch_size: int
    gpus: int
    sharding: str
    flash_attention: bool
    states_gb: float
    """Weights + gradients + optimizer states summed over all GPUs, before activations."""
    rule_of_thumb_gb: float
    """The blog's arithmetic: params x bytes/param (+ 16 B per LoRA parameter), before activations."""
    rule_of_thumb: str
    without_checkpointing: Memory
    with_checkpointing: Memory
    fits: list[GpuFit]
    tokens: int
    tokens_per_second: float
    throughput_source: str
    hours: float
    gpu_hours: float
    cost: float | None
    notes: list[str] = field(default_factory=list)
    exit_code: int = 0

    def print(self) -> None:
        trainable = f"{self.trainable_params:,} ({100 * self.trainable_params / self.params:.2f}%)"
        print_summary(
            f"pcopilot estimate: {self.model} ({self.model_type}), {self.method}",
            [
                ("parameters", self.params),
                ("trainable", trainable),
                *([("LoRA targets", ", ".join(self.lora_targets))] if self.method != "full" else []),
                *([("4-bit (NF4) parameters", self.quantized_params)] if self.method == "qlora" else []),
                ("micro-batch", f"{self.batch_size} x {self.seq_len} tokens per GPU"),
                ("GPUs", f"{self.gpus} ({self.sharding})" if self.gpus > 1 else "1"),
                ("weights+grads+optimizer, all GPUs", f"{self.states_gb:,.2f} GB"),
                ("blog's rule of thumb", f"{self.rule_of_thumb} = {self.rule_of_thumb_gb:,.2f} GB"),
            ],
        )
        rows = ("weights", "gradients", "optimizer", "activations", "overhead", "total")
        print_table(
            "Memory per GPU (GB)",
            ["", "without grad. checkpointing", "with grad. checkpointing"],
            [
                (name, getattr(self.without_checkpointing, name), getattr(self.with_checkpointing, name))
                for name in rows
            ],
        )
        print_table(
            f"Fits on {self.gpus} GPU{f's ({self.sharding})' if self.gpus > 1 else ''}?",
            ["GPU", "GB", "without GC", "with GC", "GPUs needed (FSDP, GC)"],
            [
                (f.gpu, int(f.memory_gb), f.without_checkpointing, f.with_checkpointing, f.gpus_needed or "> 64")
                for f in self.fits
            ],
        )
        print_summary(
            "Time and cost",
            [
                ("training tokens", self.tokens),
                ("tokens/s (all GPUs)", f"{self.tokens_per_second:,.0f} ({self.throughput_source})"),
                ("hours", self.hours),
                ("GPU-hours", self.gpu_hours),
                ("cost", f"{self.cost:,.2f}" if self.cost is not None else "give --price_per_gpu_hour"),
            ],
        )
        for note in self.notes:
            stdout.print(f"note: {note}")


def read_model_shape(name: str, lora: LoraSettings) -> ModelShape:
    """Reads `name`'s config (hub id or directory) and counts its parameters on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    local = Path(name).expanduser()
    if name.startswith(("/", ".", "~")) or local.exists():
        if not (local / "config.json").is_file():
            raise PcopilotError(f"--model {name!r}: no config.json in {local} (is it a Hugging Face model directory?)")
        name = str(local)
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise PcopilotError(
            f"cannot read a model config from --model {name!r}: {error}\n"
            "Give a hub id (e.g. bigcode/starcoder) or a directory that holds config.json."
        ) from error
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
    targets = lora_target_modules(config.model_type, lora.target_modules or None)
    if targets == ["all-linear"]:
        targets = "all-linear"
    linear, quantized, lora_params, targets_found = _count_linear_and_lora(model, targets, lora.r)
    if lora_params == 0:
        raise PcopilotError(
            f"no module of {config.model_type} matches the LoRA targets {targets}: "
            "set --lora.target_modules to names of its Linear layers, or `all-linear`."
        )
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


def layer_activation_bytes(shape: ModelShape, seq_len: int, batch: int, flash_attention: bool) -> float:
    """Bytes one transformer layer keeps for backward (Korthikanti et al. 2022, generalized; see docs/estimate.md)."""
    s, b, h = seq_len, batch, shape.hidden
    q_width, kv_width, f = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim, shape.intermediate
    # norm outputs / QKV input (2h), Q (2q), K and V (4kv), attention output (2q), dropout mask (h)
    attention = s * b * (2 * h + 2 * q_width + 4 * kv_width + 2 * q_width + h)
    # scores, softmax output and its dropout mask, unless a flash kernel recomputes them
    scores = 0 if flash_attention else 5 * shape.heads * s * s * b
    # MLP input (2h); gate and up outputs, act(gate), their product (8f) or up output and act (4f); dropout mask (h)
    mlp = s * b * (2 * h + (8 if shape.gated_mlp else 4) * f + h)
    norms = 4 * s * b * h
    return attention + scores + mlp + norms


def activation_bytes(shape: ModelShape, seq_len: int, batch: int, flash_attention: bool, checkpointing: bool) -> float:
    """Activations of one micro-batch: every layer's (or, checkpointed, each layer's input and one recomputed layer)
    plus the logits."""
    layer = layer_activation_bytes(shape, seq_len, batch, flash_attention)
    logits = LOGIT_BYTES * seq_len * batch * shape.vocab
    if checkpointing:
        return shape.layers * 2 * seq_len * batch * shape.hidden + layer + logits
    return shape.layers * layer + logits


def trainable_params(shape: ModelShape, method: str) -> int:
    return shape.params if method == "full" else shape.lora_params


def states_bytes(shape: ModelShape, method: str) -> tuple[float, float, float]:
    """(weights, gradients, optimizer states) in bytes, summed over all GPUs."""
    trainable = trainable_params(shape, method)
    if method == "full":
        weights = TRAINABLE_WEIGHT_BYTES * shape.params
    elif method == "lora":
        weights = FROZEN_WEIGHT_BYTES["lora"] * shape.params + TRAINABLE_WEIGHT_BYTES * trainable
    else:
        four_bit = shape.quantized_params * (FROZEN_WEIGHT_BYTES["qlora"] + NF4_CONSTANT_BYTES)
        bf16 = 2.0 * (shape.params - shape.quantized_params)
        weights = four_bit + bf16 + TRAINABLE_WEIGHT_BYTES * trainable
    return weights, GRADIENT_BYTES * trainable, OPTIMIZER_BYTES * trainable


def memory_per_gpu(shape: ModelShape, cfg: EstimateConfig, gpus: int, sharding: str, checkpointing: bool) -> Memory:
    """Memory of one GPU when the run uses `gpus` GPUs with `sharding`."""
    weights, gradients, optimizer = states_bytes(shape, cfg.method)
    if gpus > 1 and sharding == "fsdp":
        gathered = 2 * weights * shape.block_params / shape.params
        weights, gradients, optimizer = weights / gpus + gathered, gradients / gpus, optimizer / gpus
    elif gpus > 1:
        gradients *= 2  # DDP's all-reduce buckets hold a second copy
    activations = activation_bytes(shape, cfg.seq_len, cfg.batch_size, cfg.flash_attention, checkpointing)
    return Memory(weights / GB, gradients / GB, optimizer / GB, activations / GB, cfg.overhead_gb)


def flops_per_token(shape: ModelShape, method: str, seq_len: int, checkpointing: bool = True) -> float:
    """Training FLOPs per token: 2 per matmul weight forward, 2 more backward for input gradients, 2 more for weight
    gradients (full only), plus attention's 4·layers·width·seq forward (PaLM's accounting); a checkpointed run
    repeats the forward."""
    forward = 2 * shape.linear_params + 4 * shape.layers * shape.heads * shape.head_dim * seq_len
    weight_gradients = 2 * shape.linear_params if method == "full" else 0
    return forward * (3 if checkpointing else 2) + weight_gradients


def _fit(memory: Memory, gpu: Gpu) -> str:
    if memory.total > gpu.memory_gb:
        return "no"
    return "tight" if memory.total > 0.9 * gpu.memory_gb else "yes"


def _gpus_needed(shape: ModelShape, cfg: EstimateConfig, gpu: Gpu) -> int | None:
    for world in FSDP_WORLD_SIZES:
        if memory_per_gpu(shape, cfg, world, "fsdp", checkpointing=True).total <= gpu.memory_gb:
            return world
    return None


def _notes(shape: ModelShape, cfg: EstimateConfig) -> list[str]:
    notes = []
    if cfg.method == "qlora":
        notes.append(
            "peft's prepare_model_for_kbit_training upcasts the bf16 parameters (embeddings, norms) to fp32: "
            f"up to {2 * (shape.params - shape.quantized_params) / GB:.2f} GB more unless cast back"
        )
    if not cfg.flash_attention:
        notes.append("eager attention stores seq_len² scores per head: --flash_attention true drops them")
    notes.append(
        "measured peaks run higher (the blog: QLoRA 15B, batch 4 x 2048 on an A100: 26 GB; PyTorch's allocator "
        "caches freed blocks): leave a margin, or measure with a short run"
    )
    if cfg.gpu == "T4":
        notes.append("T4 has no bf16: training runs in fp16 there")
    return notes


def run_estimate(cfg: EstimateConfig) -> EstimateReport:
    """Reads the model's config, counts its parameters and returns the memory, fit, time and cost estimate."""
    report = estimate(read_model_shape(cfg.model, cfg.lora), cfg)
    if cfg.output is not None:
        write_run_config(cfg.output, "estimate", cfg)
        write_report(cfg.output, report)
    return report


def estimate(shape: ModelShape, cfg: EstimateConfig) -> EstimateReport:
    """The estimate for a model already read (`shape` must have been read with `cfg.lora`)."""
    trainable = trainable_params(shape, cfg.method)
    without_gc = memory_per_gpu(shape, cfg, cfg.gpus, cfg.sharding, checkpointing=False)
    with_gc = memory_per_gpu(shape, cfg, cfg.gpus, cfg.sharding, checkpointing=True)
    fits = [
        GpuFit(name, gpu.memory_gb, _fit(without_gc, gpu), _fit(with_gc, gpu), _gpus_needed(shape, cfg, gpu))
        for name, gpu in GPUS.items()
    ]

    per_param = FROZEN_WEIGHT_BYTES[cfg.method] if cfg.method != "full" else 16.0
    rule = f"{shape.params / 1e9:.2f}B x {per_param:g} B"
    rule_bytes = shape.params * per_param
    if cfg.method != "full":
        rule += f" + {trainable / 1e9:.2f}B x 16 B"
        rule_bytes += 16 * trainable

    tokens = cfg.tokens or cfg.max_steps * cfg.batch_size * cfg.gradient_accumulation_steps * cfg.gpus * cfg.seq_len
    if cfg.tokens_per_second is not None:
        tokens_per_second, source = cfg.tokens_per_second, "given"
    else:
        peak = GPUS[cfg.gpu].bf16_tflops * 1e12
        tokens_per_second = cfg.gpus * peak * cfg.mfu / flops_per_token(shape, cfg.method, cfg.seq_len)
        source = f"{cfg.gpu} at MFU {cfg.mfu:g}"
    hours = tokens / tokens_per_second / 3600
    cost = hours * cfg.gpus * cfg.price_per_gpu_hour if cfg.price_per_gpu_hour is not None else None

    return EstimateReport(
        model=cfg.model,
        model_type=shape.model_type,
        method=cfg.method,
        params=shape.params,
        trainable_params=trainable,
        quantized_params=shape.quantized_params if cfg.method == "qlora" else 0,
        lora_targets=shape.lora_targets if cfg.method != "full" else [],
        seq_len=cfg.seq_len,
        batch_size=cfg.batch_size,
        gpus=cfg.gpus,
        sharding=cfg.sharding,
        flash_attention=cfg.flash_attention,
        states_gb=sum(states_bytes(shape, cfg.method)) / GB,
        rule_of_thumb_gb=rule_bytes / GB,
        rule_of_thumb=rule,
        without_checkpointing=without_gc,
        with_checkpointing=with_gc,
        fits=fits,
        tokens=tokens,
        tokens_per_second=tokens_per_second,
        throughput_source=source,
        hours=hours,
        gpu_hours=hours * cfg.gpus,
        cost=cost,
        notes=_notes(shape, cfg),
    )
