"""What `pcopilot estimate` tells: parameters, memory per GPU, which GPUs fit, time and cost."""

from __future__ import annotations

from dataclasses import dataclass, field

from personal_copilot.console import print_summary, print_table, stdout


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
    """`yes`, `tight` (over 80% of the memory) or `no`, with --gpus and --sharding as given."""
    with_checkpointing: str
    max_batch_size: int
    """Largest per-GPU batch that fits with the run's gradient checkpointing, --gpus and --sharding (0: not one
    sequence)."""
    gpus_needed: int | None
    """Fewest GPUs of this type (1, 2, 4, … 64) that fit the run with FSDP and its gradient checkpointing."""


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
    precision: str
    """bf16 (which stands for fp16 and `auto` on a GPU too) or fp32."""
    gradient_checkpointing: bool
    """The run's setting: `run_memory` and the GPUs-needed column use it."""
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

    @property
    def run_memory(self) -> Memory:
        """Memory per GPU of the run as configured (with its gradient checkpointing)."""
        return self.with_checkpointing if self.gradient_checkpointing else self.without_checkpointing

    def print(self) -> None:
        checkpointing = "on" if self.gradient_checkpointing else "off"
        trainable = f"{self.trainable_params:,} ({100 * self.trainable_params / self.params:.2f}%)"
        print_summary(
            f"pcopilot estimate: {self.model} ({self.model_type}), {self.method}",
            [
                ("parameters", self.params),
                ("trainable", trainable),
                *([("LoRA targets", ", ".join(self.lora_targets))] if self.method != "full" else []),
                *([("4-bit (NF4) parameters", self.quantized_params)] if self.method == "qlora" else []),
                ("micro-batch", f"{self.batch_size} x {self.seq_len} tokens per GPU, {self.precision}"),
                ("GPUs", f"{self.gpus} ({self.sharding})" if self.gpus > 1 else "1"),
                ("weights+grads+optimizer, all GPUs", f"{self.states_gb:,.2f} GB"),
                ("blog's rule of thumb", f"{self.rule_of_thumb} = {self.rule_of_thumb_gb:,.2f} GB"),
                ("this run, per GPU", f"{self.run_memory.total:,.2f} GB (gradient checkpointing {checkpointing})"),
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
            ["GPU", "GB", "without GC", "with GC", "max batch", "GPUs needed (FSDP)"],
            [
                (
                    f.gpu,
                    int(f.memory_gb),
                    f.without_checkpointing,
                    f.with_checkpointing,
                    f.max_batch_size,
                    f.gpus_needed or "> 64",
                )
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
