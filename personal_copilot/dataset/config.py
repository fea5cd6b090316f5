"""Settings of `pcopilot dataset` and `pcopilot tokenizer` (and the FIM group the train stage reuses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from personal_copilot.dataset.families import FamilyName
from personal_copilot.dataset.splits import SplitBy


@dataclass
class FimConfig:
    """Fill-in-the-middle: which documents become FIM examples, in which layout, cut where."""

    rate: float = 0.5
    """Share of documents turned into FIM examples (0 trains plain left-to-right only)."""
    spm_rate: float = 0.5
    """Share of FIM examples in SPM layout (suffix, prefix, middle); the others are PSM (prefix, suffix, middle)."""
    level: Literal["char", "token"] = "char"
    """`char`: cut the text, then tokenize each part (no token torn at a cut); `token`: cut the token ids (blog)."""
    span: Literal["uniform", "line"] = "uniform"
    """The middle: `uniform` between two random cut points (the blog); `line` part of a line, the rest of a line,
    whole lines or an indented block (what a user at a cursor asks for)."""
    scope: Literal["window", "file"] = "window"
    """`window`: a file longer than --seq_len is first cut at line ends into pieces that fit a row, and each piece
    is a FIM example of its own, so its prefix, suffix and middle are trained on together (context-level FIM,
    Bavarian et al. 2022); `file`: one example per file (the blog), whose middle lands rows away from its prefix
    when the file is longer than a row."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"--fim.rate must be in [0, 1], got {self.rate}")
        if not 0.0 <= self.spm_rate <= 1.0:
            raise ValueError(f"--fim.spm_rate must be in [0, 1], got {self.spm_rate}")


@dataclass
class DatasetConfig:
    """Write training examples (FIM-transformed, packed) as JSON lines to look at before spending GPU hours. Each
    line has `text` (decoded, sentinels visible), `input_ids` and `sources`; the resolved settings and the report
    (with the train/eval split) are written beside it as `NAME.pcopilot_config.yaml` and `NAME.report.json`.

    Example: pcopilot dataset --data data/ --tokenizer tok/ --output examples.jsonl --num_examples 20 --fim.rate 1
    """

    tokenizer: str
    """Tokenizer directory (e.g. made by `pcopilot tokenizer`) or Hub model id; a fast tokenizer (tokenizer.json)."""
    data: Path = Path("pcopilot_data")
    """Collected dataset (the output directory of `pcopilot collect`)."""
    output: Path = Path("pcopilot_examples.jsonl")
    """JSON lines file to write."""
    num_examples: int = 100
    """Lines to write (0: the whole split)."""
    family: FamilyName | None = None
    """Model family whose FIM sentinels are used (default: detected from the tokenizer's vocabulary)."""
    seq_len: int = 2048
    """Tokens per training row; longer documents are cut into several rows."""
    packing: bool = True
    """Pack documents into rows of exactly --seq_len tokens (end-of-text between them, position ids restarting at
    each document); false: one document per line."""
    seed: int = 0
    """Seed of the FIM choices (per document, from the seed and the document's repo_id and path) and of the split."""
    split: Literal["train", "eval"] = "train"
    """Which side of the train/eval split to write."""
    eval_fraction: float = 0.1
    """Share held out for evaluation: of the files of each repository (--split_by file), or of the repositories."""
    split_by: SplitBy = "auto"
    """file: hold out files within every repository, so each is trained on and evaluated; repository: hold out whole
    repositories; auto: by repository from 10 repositories on, else by file."""
    repo_context: bool = False
    """Put the repository name and file path before each document (families with such tokens: qwen, starcoder)."""
    fim: FimConfig = field(default_factory=FimConfig)
    """Fill-in-the-middle."""

    def __post_init__(self) -> None:
        self.data, self.output = Path(self.data), Path(self.output)
        if self.num_examples < 0:
            raise ValueError(f"--num_examples must be >= 0 (0 writes all), got {self.num_examples}")
        if self.seq_len < 16:
            raise ValueError(f"--seq_len must be at least 16, got {self.seq_len}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"--eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if self.split == "eval" and self.eval_fraction == 0:
            raise ValueError("--split eval needs --eval_fraction > 0")


@dataclass
class TokenizerConfig:
    """Train a byte-level BPE tokenizer on a collected dataset, with a model family's special tokens (FIM
    sentinels, end-of-text, file separator), saved so that `AutoTokenizer.from_pretrained(OUTPUT)` loads it.

    Example: pcopilot tokenizer --data data/ --output tok/ --vocab_size 8192 --family qwen
    """

    data: Path = Path("pcopilot_data")
    """Collected dataset (the output directory of `pcopilot collect`)."""
    output: Path = Path("pcopilot_tokenizer")
    """Directory to save the tokenizer in."""
    vocab_size: int = 8192
    """Vocabulary size, special tokens and the 256 byte tokens included."""
    family: FamilyName = "starcoder"
    """Model family whose special tokens the tokenizer gets."""
    min_frequency: int = 2
    """A merge must occur at least this often in the data."""

    def __post_init__(self) -> None:
        self.data, self.output = Path(self.data), Path(self.output)
        if self.vocab_size < 512:
            raise ValueError(f"--vocab_size must be at least 512, got {self.vocab_size}")
        if self.min_frequency < 1:
            raise ValueError(f"--min_frequency must be >= 1, got {self.min_frequency}")
