"""Settings of `pcopilot train`; defaults follow the blog's QLoRA recipe (r 32, alpha 64, lr 5e-4 cosine, seq 2048)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from personal_copilot.dataset import FamilyName, FimConfig, SplitBy


@dataclass
class LoraSettings:
    """LoRA adapter shape (methods lora and qlora)."""

    r: int = 32
    """Rank of the update matrices."""
    alpha: int = 64
    """Scaling numerator: the update is scaled by alpha / r."""
    dropout: float = 0.0
    """Dropout on the adapter's input."""
    target_modules: list[str] | str = field(default_factory=list)
    """Modules to adapt, comma-separated or a list (default: the architecture's preset, e.g. c_attn,c_proj,c_fc)."""

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):
            self.target_modules = [m.strip() for m in self.target_modules.split(",") if m.strip()]
        if self.r < 1 or self.alpha < 1:
            raise ValueError(f"--lora.r and --lora.alpha must be >= 1, got {self.r} and {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--lora.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class OptimSettings:
    """Optimizer and learning-rate schedule."""

    learning_rate: float = 5e-4
    """Peak learning rate (the blog: 5e-4 for LoRA, 5e-5 for full fine-tuning)."""
    lr_scheduler_type: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    """Learning-rate schedule after warmup."""
    warmup_steps: int = 30
    """Linear warmup steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    optim: str = "adamw_torch_fused"
    """Optimizer as transformers names it (adamw_torch_fused, adamw_torch, paged_adamw_32bit, adamw_bnb_8bit …)."""

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ValueError(f"--optim.learning_rate must be positive, got {self.learning_rate}")


@dataclass
class TrainConfig:
    """Fine-tune a code model on your code: LoRA, QLoRA or full fine-tuning, with fill-in-the-middle on packed
    sequences (task fim) or on conversations (task chat). Multi-GPU: `accelerate launch --config_file
    configs/accelerate/fsdp.yaml -m personal_copilot train …`.

    Example: pcopilot train --model Qwen/Qwen2.5-Coder-1.5B --data data/ --method qlora --output runs/qwen-qlora
    """

    model: str = "base"
    """Hub id or local path of a causal LM; `base`: the shipped base model (see `pcopilot base show`); or
    scratch:tiny / scratch:small / scratch:tiny-starcoder (a random small model initialised from config, with a
    tokenizer trained on --data, for tests and pretraining)."""
    data: list[str] | str = field(default_factory=lambda: ["pcopilot_data"])
    """Collected dataset directory, Parquet/JSONL file or hub dataset id; a list (`--data '[a/, b.jsonl:0.3]'`) mixes
    several, PATH:WEIGHT weighting them."""
    output: Path = Path("runs/pcopilot")
    """Run directory: adapter or model, tokenizer, checkpoints, metrics.jsonl, plots, report.json."""
    method: Literal["lora", "qlora", "full"] = "lora"
    """lora: train a LoRA adapter; qlora: LoRA on a 4-bit NF4 base (bitsandbytes); full: every weight."""
    task: Literal["fim", "chat"] = "fim"
    """fim: code completion with fill-in-the-middle on code; chat: assistant fine-tuning on `messages`."""
    tokenizer: str | None = None
    """Tokenizer to use (default: the model's; for scratch: models, one trained on --data)."""
    family: FamilyName | None = None
    """FIM sentinel family (default: detected from the tokenizer's vocabulary)."""
    seq_len: int = 2048
    """Tokens per training row (packed for fim; conversations are cut to it for chat)."""
    max_steps: int = 2000
    """Optimizer steps."""
    batch_size: int = 4
    """Rows per device per micro-batch."""
    gradient_accumulation_steps: int = 4
    """Micro-batches per optimizer step (tokens per step = batch_size × this × seq_len × devices)."""
    eval_fraction: float = 0.1
    """Share of the code held out for the eval loss and `pcopilot eval`: of the files of each repository (--split_by
    file), or of the repositories; 0 trains on everything."""
    split_by: SplitBy = "auto"
    """file: hold out files within every repository, so each is trained on and evaluated; repository: hold out whole
    repositories (code the model never saw); auto: by repository from 10 repositories on, else by file."""
    eval_rows: int = 64
    """Held-out rows the eval loss is computed on."""
    eval_steps: int = 100
    """Compute the eval loss every N steps (0: only at the end)."""
    save_steps: int = 100
    """Write a checkpoint every N steps."""
    save_total_limit: int | None = 3
    """Keep only the newest N checkpoints."""
    logging_steps: int = 10
    """Log loss, learning rate and tokens/s every N steps (metrics.jsonl)."""
    resume: bool | Literal["auto"] = False
    """true: continue from the newest complete checkpoint in --output (there must be one); auto: continue when there
    is one, else start; false: start, and refuse an --output that holds checkpoints."""
    seed: int = 0
    """Seed of the model init (scratch), data order, FIM choices and dropout."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """auto: bf16 on GPUs that have it, fp16 on older GPUs, fp32 on CPU."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass: much less memory, about 30% slower."""
    attn_implementation: Literal["sdpa", "flash_attention_2", "eager"] = "sdpa"
    """Attention kernel; flash_attention_2 needs a CUDA GPU and the flash-attn package."""
    early_stopping_patience: int | None = None
    """Stop after this many evaluations without a better eval loss."""
    scratch_vocab_size: int = 8192
    """Vocabulary of the tokenizer trained for a scratch: model."""
    repo_context: bool = False
    """Prefix each file with its repository name and path (families with such tokens)."""
    report_to: Literal["none", "tensorboard", "wandb"] = "none"
    """Experiment tracker."""
    push_to_hub: str | None = None
    """Upload the adapter (or model) and tokenizer to this Hub repo id at the end."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """LoRA shape."""
    optim: OptimSettings = field(default_factory=OptimSettings)
    """Optimizer."""
    fim: FimConfig = field(default_factory=FimConfig)
    """Fill-in-the-middle (task fim)."""
    extra_training_args: dict[str, Any] = field(default_factory=dict)
    """Any other transformers TrainingArguments, passed through as they are (e.g. {dataloader_num_workers: 2}: each
    DataLoader worker reads its own share of the documents)."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if isinstance(self.data, str):
            self.data = [self.data]
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.seq_len < 16:
            raise ValueError(f"--seq_len must be at least 16, got {self.seq_len}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"--eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if not self.data:
            raise ValueError("--data needs at least one dataset")
        if self.task == "chat" and self.model.startswith("scratch:") and not self.tokenizer:
            raise ValueError(
                "--task chat with a scratch: model needs --tokenizer (trained on code by `pcopilot tokenizer`)"
            )
