"""Settings of `pcopilot estimate`: every setting of `pcopilot train` (so a train YAML or command line estimates the
run it would launch) and the GPUs, throughput and price to estimate it for. Imports nothing heavy: `--help` is
instant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from personal_copilot.train.config import TrainConfig

GpuName = Literal["T4", "L4", "A10", "RTX-4090", "A100-40GB", "A100-80GB", "H100-80GB", "H200"]


@dataclass
class EstimateConfig(TrainConfig):
    """Memory per GPU (weights, gradients, optimizer states, activations with and without gradient
    checkpointing), the GPUs it fits on, and training time and cost of a `pcopilot train` run, from the model's config
    alone (parameters are counted exactly on the meta device; see docs/estimate.md). Every `pcopilot train` setting
    is accepted, so `--config` takes a train YAML; those that change the estimate are --model, --method, --seq_len,
    --batch_size, --gradient_accumulation_steps, --max_steps, --precision, --gradient_checkpointing,
    --attn_implementation, --lora.r and --lora.target_modules. --output (the run's folder) is never written.

    Example: pcopilot estimate --config configs/train/qwen2.5-coder-7b/qlora.yaml --gpu L4
    """

    gpus: int = 1
    """Number of GPUs the run uses."""
    sharding: Literal["fsdp", "ddp"] = "fsdp"
    """With --gpus > 1: fsdp (FULL_SHARD / ZeRO-3) splits weights, gradients and optimizer states over the GPUs;
    ddp keeps a full copy on each."""
    overhead_gb: float = 1.5
    """Per-GPU memory outside the model's tensors: CUDA context, cuBLAS/NCCL workspaces, allocator fragmentation."""
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
    report_dir: Path | None = None
    """Directory for the estimate's report.json and pcopilot_config.yaml (default: print only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.report_dir is not None:
            self.report_dir = Path(self.report_dir)
        if self.gpus < 1:
            raise ValueError(f"--gpus must be >= 1, got {self.gpus}")
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

    @property
    def flash_attention(self) -> bool:
        """Whether the attention kernel never stores the seq_len x seq_len scores (FlashAttention-2, or SDPA's
        flash / memory-efficient backends on a GPU); eager attention stores them."""
        return self.attn_implementation != "eager"

    @property
    def value_bytes(self) -> int:
        """Bytes of one weight, gradient or activation value: 2 in bf16 / fp16 (`auto` on a GPU), 4 in fp32."""
        return 4 if self.precision == "fp32" else 2
