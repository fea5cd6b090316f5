"""What `pcopilot dataset` and `pcopilot tokenizer` tell: examples written, FIM layouts, tokens, the split; the
tokenizer's special-token ids and compression."""

from __future__ import annotations

from dataclasses import dataclass

from personal_copilot.console import print_summary, print_table
from personal_copilot.dataset.splits import DatasetSplit


@dataclass
class DatasetReport:
    output: str
    tokenizer: str
    family: str | None
    split: DatasetSplit
    side: str
    """Which side of the split was written."""
    examples: int
    """Lines written."""
    documents: int
    """Distinct documents with tokens in those lines."""
    fim_psm: int
    """FIM examples in PSM layout: whole files, or row-sized pieces of longer files (`--fim.scope window`)."""
    fim_spm: int
    plain: int
    """Plain left-to-right examples (files, or runs of a file's pieces)."""
    tokens: int
    """Tokens written, padding excluded."""
    padding_tokens: int
    seconds: float

    @property
    def exit_code(self) -> int:
        return 0

    def print(self) -> None:
        print_summary(
            "pcopilot dataset",
            [
                ("written to", self.output),
                ("tokenizer", f"{self.tokenizer} ({self.family or 'no FIM family'})"),
                ("lines", self.examples),
                ("documents", self.documents),
                ("examples: FIM PSM / SPM / plain", f"{self.fim_psm} / {self.fim_spm} / {self.plain}"),
                ("tokens", self.tokens),
                ("padding tokens", self.padding_tokens),
                (f"split by {self.split.by}", f"{self.side} side written"),
                ("documents: train / eval", f"{self.split.train_documents} / {self.split.eval_documents}"),
                *self.split.summary_rows(),
                ("seconds", self.seconds),
            ],
        )


@dataclass
class TokenizerReport:
    output: str
    family: str
    vocab_size: int
    """Size of the trained vocabulary (smaller than asked when the data has too few distinct merges)."""
    documents: int
    megabytes: float
    special_tokens: dict[str, int]
    chars_per_token: float
    """Characters per token on up to the first 200 documents."""
    seconds: float

    @property
    def exit_code(self) -> int:
        return 0

    def print(self) -> None:
        print_table("Special tokens", ["token", "id"], sorted(self.special_tokens.items(), key=lambda item: item[1]))
        print_summary(
            "pcopilot tokenizer",
            [
                ("tokenizer", self.output),
                ("family", self.family),
                ("vocabulary", self.vocab_size),
                ("documents", self.documents),
                ("MB of text", self.megabytes),
                ("characters per token", self.chars_per_token),
                ("seconds", self.seconds),
            ],
        )
