"""`pcopilot estimate`: GPU memory, time and cost of fine-tuning a model, from its config alone.

    pcopilot estimate --config configs/train/qwen2.5-coder-7b/qlora.yaml     # the run `pcopilot train` would launch
    pcopilot estimate --model Qwen/Qwen2.5-Coder-7B --method full --gpus 8 --batch_size 1

Parameters are counted exactly on the meta device (`model_shape.py`). Memory per GPU, in GB of 1e9 bytes like the
blog (docs/estimate.md has the derivation and how it compares with the blog's measurements):

- weights: 2 B/param in bf16 (full, lora; 4 in fp32); qlora keeps Linear weights in 4-bit NF4 (0.5 B/param plus
  0.016 B of double-quantized block constants) and embeddings, norms, biases and the output head in bf16. LoRA adds
  its own 2 B/param. FSDP adds two gathered transformer blocks (the current one and the prefetched one).
- gradients: 2 B per trainable parameter (bf16; 4 in fp32); DDP keeps a second copy in its all-reduce buckets.
- optimizer states: AdamW's fp32 master weight, m and v: 12 B per trainable parameter (fp32 weights are their own
  master: 8 B). With the two lines above a trainable parameter costs 16 B: the blog's "15.5B x 16 = 248 GB" for full
  fine-tuning.
- activations of one micro-batch (bf16), per transformer layer after Korthikanti et al. 2022 ("Reducing Activation
  Recomputation in Large Transformer Models"), s·b·h·(34 + 5·a·s/h) bytes for GPT-3-style layers, generalized here
  to grouped/multi-query attention, the MLP's real width and gating and fp32 RMSNorm inputs; FlashAttention replaces
  the 5·a·s²·b of the scores by its 2·s·b·h output.
  In fp32 every value but the dropout masks takes twice the bytes. Gradient checkpointing keeps each layer's input
  (2·s·b·h) and recomputes one layer at a time. The output head adds 10 B per logit (bf16 logits, their fp32 copy
  for the loss, log-softmax saved for backward).
- overhead: a constant (--overhead_gb) for the CUDA context, workspaces and fragmentation.

fsdp divides weights, gradients and optimizer states by --gpus; activations depend on the per-GPU batch only.
The fit of the run itself uses its --gradient_checkpointing; the report shows both.
"""

from __future__ import annotations

from dataclasses import dataclass

from personal_copilot.configs import write_report, write_run_config
from personal_copilot.errors import PcopilotError
from personal_copilot.train.estimate_config import EstimateConfig, GpuName
from personal_copilot.train.estimate_report import EstimateReport, GpuFit, Memory
from personal_copilot.train.lora import lora_target_modules
from personal_copilot.train.model_shape import ModelShape, read_model_shape

GB = 1e9
FROZEN_WEIGHT_BYTES = {"full": 2.0, "lora": 2.0, "qlora": 0.5}
"""Bytes per base parameter the blog's rule of thumb uses (full: the weight part of its 16 B)."""
NF4_CONSTANT_BYTES = (8 / 64 + 32 / (64 * 256)) / 8
"""Per 4-bit weight: an 8-bit absmax per block of 64, and an fp32 constant per 256 absmaxes (double quantization)."""
TRAINABLE_PARAM_BYTES = 16.0
"""A trainable parameter: its weight and gradient (2 B each in bf16, 4 in fp32) and AdamW's fp32 m and v, plus an fp32
master copy of a 16-bit weight: 16 B either way."""
LOGIT_BYTES = {2: 10.0, 4: 8.0}
"""Per logit: the head's output (bf16: and its fp32 copy for the loss), the fp32 log-softmax kept for backward."""


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
TIGHT = 0.8
"""Above this share of a GPU's memory a fit is `tight`: the blog's measured QLoRA peak is 21% over this estimate."""
FSDP_WORLD_SIZES = (1, 2, 4, 8, 16, 32, 64)
"""GPU counts tried for the "GPUs needed" column."""


def layer_activation_bytes(
    shape: ModelShape, seq_len: int, batch: int, flash_attention: bool, value_bytes: int = 2
) -> float:
    """Bytes one transformer layer keeps for backward (Korthikanti et al. 2022, generalized; see docs/estimate.md),
    with 16-bit values (`value_bytes` 2) or fp32 ones (4)."""
    s, b, h = seq_len, batch, shape.hidden
    q_width, kv_width, f = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim, shape.intermediate
    # norm output = QKV input (2h), Q (2q), K and V (4kv), attention output = o_proj input (2q), dropout mask (h)
    attention = s * b * (2 * h + 2 * q_width + 4 * kv_width + 2 * q_width + h)
    # eager: scores' softmax output, its dropout mask and output; a flash kernel keeps only its own output (copied
    # by the transpose before o_proj under SDPA)
    scores = 2 * s * b * q_width if flash_attention else 5 * shape.heads * s * s * b
    # MLP input (2h); gate and up outputs, act(gate), their product (8f) or up output and act (4f); dropout mask (h)
    mlp = s * b * (2 * h + (8 if shape.gated_mlp else 4) * f + h)
    # each of the two norms keeps its input: bf16, or fp32 where an RMSNorm upcasts (Llama, Qwen2 in transformers)
    norms = 2 * (4 if shape.rms_norm or value_bytes == 4 else 2) * s * b * h
    masks = 2 * s * b * h if flash_attention else 2 * s * b * h + shape.heads * s * s * b  # 1 B each, any precision
    return (attention + scores + mlp - masks) * value_bytes / 2 + masks + norms


def activation_bytes(
    shape: ModelShape, seq_len: int, batch: int, flash_attention: bool, checkpointing: bool, value_bytes: int = 2
) -> float:
    """Activations of one micro-batch: every layer's (or, checkpointed, each layer's input and one recomputed layer)
    plus the logits."""
    layer = layer_activation_bytes(shape, seq_len, batch, flash_attention, value_bytes)
    logits = LOGIT_BYTES[value_bytes] * seq_len * batch * shape.vocab
    if checkpointing:
        return shape.layers * value_bytes * seq_len * batch * shape.hidden + layer + logits
    return shape.layers * layer + logits


def trainable_params(shape: ModelShape, method: str) -> int:
    return shape.params if method == "full" else shape.lora_params


def states_bytes(shape: ModelShape, method: str, value_bytes: int = 2) -> tuple[float, float, float]:
    """(weights, gradients, optimizer states) in bytes, summed over all GPUs, with 16-bit weights (`value_bytes` 2)
    or fp32 ones (4)."""
    trainable = trainable_params(shape, method)
    if method == "full":
        weights = value_bytes * shape.params
    elif method == "lora":
        weights = value_bytes * (shape.params + trainable)
    else:
        four_bit = shape.quantized_params * (FROZEN_WEIGHT_BYTES["qlora"] + NF4_CONSTANT_BYTES)
        unquantized = value_bytes * (shape.params - shape.quantized_params)
        weights = four_bit + unquantized + value_bytes * trainable
    return weights, value_bytes * trainable, (TRAINABLE_PARAM_BYTES - 2 * value_bytes) * trainable


def memory_per_gpu(
    shape: ModelShape,
    cfg: EstimateConfig,
    gpus: int,
    sharding: str,
    checkpointing: bool,
    batch_size: int | None = None,
) -> Memory:
    """Memory of one GPU when the run uses `gpus` GPUs with `sharding` (and `batch_size`, default --batch_size)."""
    weights, gradients, optimizer = states_bytes(shape, cfg.method, cfg.value_bytes)
    if gpus > 1 and sharding == "fsdp":
        gathered = 2 * weights * shape.block_params / shape.params
        weights, gradients, optimizer = weights / gpus + gathered, gradients / gpus, optimizer / gpus
    elif gpus > 1:
        gradients *= 2  # DDP's all-reduce buckets hold a second copy
    batch_size = cfg.batch_size if batch_size is None else batch_size
    activations = activation_bytes(shape, cfg.seq_len, batch_size, cfg.flash_attention, checkpointing, cfg.value_bytes)
    return Memory(weights / GB, gradients / GB, optimizer / GB, activations / GB, cfg.overhead_gb)


def flops_per_token(shape: ModelShape, method: str, seq_len: int, checkpointing: bool = True) -> float:
    """Training FLOPs per token (PaLM's accounting): per matmul weight 2 forward, 2 backward for the input gradient
    and 2 for the weight gradient (full only); attention's scores 4·layers·width·seq forward and twice that backward.
    A checkpointed run repeats the forward."""
    matmul = 2 * shape.linear_params
    attention = 4 * shape.layers * shape.heads * shape.head_dim * seq_len
    forward = matmul + attention
    backward = (2 if method == "full" else 1) * matmul + 2 * attention
    return forward * (2 if checkpointing else 1) + backward


def _fit(memory: Memory, gpu: Gpu) -> str:
    if memory.total > gpu.memory_gb:
        return "no"
    return "tight" if memory.total > TIGHT * gpu.memory_gb else "yes"


def fewest_gpus(shape: ModelShape, cfg: EstimateConfig, gpu: GpuName) -> int | None:
    """Fewest GPUs of type `gpu` (1, 2, 4, … 64, with FSDP) whose memory holds the run `cfg` describes, with its
    gradient checkpointing; None when 64 do not."""
    for world in FSDP_WORLD_SIZES:
        memory = memory_per_gpu(shape, cfg, world, "fsdp", checkpointing=cfg.gradient_checkpointing)
        if memory.total <= GPUS[gpu].memory_gb:
            return world
    return None


def gpus_needed(cfg: EstimateConfig, gpu: GpuName) -> int | None:
    """Fewest GPUs of type `gpu` that fit the training run `cfg` (a `pcopilot train` config and the estimate's
    settings) describes; reads the model's config (bundled, local, cached or from the Hub)."""
    return fewest_gpus(read_model_shape(cfg.model, cfg.lora, cfg.scratch_vocab_size), cfg, gpu)


def _max_batch_size(shape: ModelShape, cfg: EstimateConfig, gpu: Gpu) -> int:
    """Largest per-GPU batch that fits (activations grow linearly with the batch)."""
    one = memory_per_gpu(shape, cfg, cfg.gpus, cfg.sharding, cfg.gradient_checkpointing, batch_size=1)
    free = gpu.memory_gb - (one.total - one.activations)
    return max(0, int(free // one.activations))


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
        "this is a floor: measured peaks run higher (allocator caching and fragmentation, library buffers); "
        "docs/estimate.md compares it with the blog's measurements"
    )
    if cfg.gpu == "T4":
        notes.append("T4 has no bf16: training runs in fp16 there")
    if cfg.precision == "fp32":
        notes.append("--precision fp32: weights, gradients and activations take 4 bytes a value, not 2")
    return notes


def run_estimate(cfg: EstimateConfig) -> EstimateReport:
    """Reads the model's config, counts its parameters and returns the memory, fit, time and cost estimate."""
    report = estimate(read_model_shape(cfg.model, cfg.lora, cfg.scratch_vocab_size), cfg)
    if cfg.report_dir is not None:
        write_run_config(cfg.report_dir, "estimate", cfg)
        write_report(cfg.report_dir, report)
    return report


def estimate(shape: ModelShape, cfg: EstimateConfig) -> EstimateReport:
    """The estimate for a model already read (`shape` must have been read with `cfg.lora`)."""
    if cfg.method != "full" and shape.lora_params == 0:
        raise PcopilotError(
            f"no module of {shape.model_type} matches the LoRA targets "
            f"{lora_target_modules(shape.model_type, cfg.lora.target_modules or None)}: "
            "set --lora.target_modules to names of its Linear layers, or `all-linear`."
        )
    trainable = trainable_params(shape, cfg.method)
    without_gc = memory_per_gpu(shape, cfg, cfg.gpus, cfg.sharding, checkpointing=False)
    with_gc = memory_per_gpu(shape, cfg, cfg.gpus, cfg.sharding, checkpointing=True)
    fits = [
        GpuFit(
            gpu=name,
            memory_gb=gpu.memory_gb,
            without_checkpointing=_fit(without_gc, gpu),
            with_checkpointing=_fit(with_gc, gpu),
            max_batch_size=_max_batch_size(shape, cfg, gpu),
            gpus_needed=fewest_gpus(shape, cfg, name),
        )
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
        precision="fp32" if cfg.value_bytes == 4 else "bf16",
        gradient_checkpointing=cfg.gradient_checkpointing,
        states_gb=sum(states_bytes(shape, cfg.method, cfg.value_bytes)) / GB,
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
