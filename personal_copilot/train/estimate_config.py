"""Settings of `pcopilot estimate` (imports nothing heavy, so `pcopilot estimate --help` answers at once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

GpuName = Literal["T4", "L4", "A10", "RTX-4090", "A100-40GB", "A100-80GB", "H100-80GB", "H200"]


@dataclass
class AdapterShape:
    """The LoRA adapter whose parameters are counted (ignored by --method full)."""

    r: int = 32
    """LoRA rank (the blog's recipe: 32)."""
    target_modules: list[str] = field(default_factory=list)
    """Module names to adapt (default: the architecture's preset, e.g. c_attn,c_proj,c_fc for StarCoder; `all-linear`
    for every Linear layer but the output head)."""


@dataclass
class EstimateConfig:
    """Memory per GPU (weights, gradients, optimizer states, activations with and without gradient
    checkpointing), the GPUs it fits on, and training time and cost. Parameters are counted exactly on the meta
    device; see docs/estimate.md for the memory model.

    Example: pcopilot estimate --model Qwen/Qwen2.5-Coder-7B --method qlora --seq_len 2048 --batch_size 4
    """

    model: str
    """Hub id (e.g. bigcode/starcoder) or local directory holding the model's config.json."""
    method: Literal["lora", "qlora", "full"] = "qlora"
    """lora: bf16 base + adapter; qlora: 4-bit NF4 base (double quantization) + adapter; full: every parameter."""
    seq_len: int = 2048
    """Tokens per training sequence."""
    batch_size: int = 4
    """Sequences per GPU per forward pass (the per-device micro-batch)."""
    gradient_accumulation_steps: int = 4
    """Micro-batches per optimizer step (only changes tokens per step, not memory)."""
    gpus: int = 1
    """Number of GPUs the run uses."""
    sharding: Literal["fsdp", "ddp"] = "fsdp"
    """With --gpus > 1: fsdp (FULL_SHARD / ZeRO-3) splits weights, gradients and optimizer states over the GPUs;
    ddp keeps a full copy on each."""
    flash_attention: bool = True
    """Attention kernels that never store the seq_len x seq_len scores (FlashAttention-2, or SDPA's flash /
    memory-efficient backends); false adds eager attention's 5·heads·seq_len² bytes per sequence and layer."""
    lora: AdapterShape = field(default_factory=AdapterShape)
    """The adapter (methods lora and qlora)."""
    overhead_gb: float = 1.5
    """Per-GPU memory outside the model's tensors: CUDA context, cuBLAS/NCCL workspaces, allocator fragmentation."""
    max_steps: int = 2000
    """Optimizer steps of the run; tokens = max_steps x batch_size x gradient_accumulation_steps x gpus x seq_len."""
    tokens: int | None = None
    """Total training tokens (overrides the count from --max_steps)."""
    tokens_per_second: float | None = None
    """Measured training throughput of the whole run (all GPUs); default: estimated from FLOPs and --mfu."""
    gpu: GpuName = "A100-80GB"
    """GPU type the FLOP-based throughput estimate assumes (its dense bf16 peak)."""
    mfu: float = 0.4
    """Model FLOPs utilization for the throughput estimate (the blog's runs imply 0.47 for QLoRA on one A100 and
    0.11 for FSDP full fine-tuning on 8)."""
    price_per_gpu_hour: float | None = None
    """Rental price of one GPU for one hour, for the cost line (e.g. 1.10)."""
    output: Path | None = None
    """Directory for report.json and pcopilot_config.yaml (default: print only)."""

    def __post_init__(self) -> None:
        if self.output is not None:
            self.output = Path(self.output)
        for flag in ("seq_len", "batch_size", "gradient_accumulation_steps", "gpus", "max_steps"):
            if getattr(self, flag) < 1:
                raise ValueError(f"--{flag} must be >= 1, got {getattr(self, flag)}")
        if self.lora.r < 1:  # checked here: cli.parse_config turns only the top-level ValueError into a usage error
            raise ValueError(f"--lora.r must be >= 1, got {self.lora.r}")
        if self.tokens is not None and self.tokens < 1:
            raise ValueError(f"--tokens must be >= 1, got {self.tokens}")
        if self.tokens_per_second is not None and self.tokens_per_second <= 0:
            raise ValueError(f"--tokens_per_second must be positive, got {self.tokens_per_second}")
        if not 0.0 < self.mfu <= 1.0:
            raise ValueError(f"--mfu must be in (0, 1], got {self.mfu}")
        if self.overhead_gb < 0:
            raise ValueError(f"--overhead_gb must be >= 0, got {self.overhead_gb}")
        if self.price_per_gpu_hour is not None and self.price_per_gpu_hour < 0:
            raise ValueError(f"--price_per_gpu_hour must be >= 0, got {self.price_per_gpu_hour}")
