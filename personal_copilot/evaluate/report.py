"""What `pcopilot eval …` reports: pass@k and how the samples ended; FIM scores per hole kind and repository; the
held-out loss; and the comparison of base and tuned models, metric by metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from personal_copilot.console import print_summary, print_table
from personal_copilot.evaluate.infill import FimScores
from personal_copilot.evaluate.loss import LossScores


def _shown_ks(pass_at_k: dict[str, float]) -> list[str]:
    """pass@1, @10, @100 and @N where computed."""
    largest = f"pass@{len(pass_at_k)}"
    return [k for k in pass_at_k if k in ("pass@1", "pass@10", "pass@100", largest)]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


@dataclass
class HumanEvalReport:
    output: str
    model: str
    problems: int
    samples: int
    pass_at_k: dict[str, float]
    """pass@k averaged over problems, for every k up to the number of samples per problem."""
    results: dict[str, int]
    """Samples by how they ended: passed, failed, timed out, killed (by a resource limit)."""
    sandbox: dict[str, str]
    """What a program could and could not do."""
    generation: dict[str, Any] | None
    """Sampling settings (None when the completions were read from a file)."""
    truncated_prompts: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    exit_code: int = 0

    def print(self) -> None:
        rows: list[tuple[str, object]] = [
            ("output", self.output),
            ("model", self.model),
            ("problems / samples", f"{self.problems} / {self.samples}"),
            *((k, _percent(self.pass_at_k[k])) for k in _shown_ks(self.pass_at_k)),
            *((f"samples {result}", count) for result, count in sorted(self.results.items())),
            *((f"skipped: {reason}", count) for reason, count in self.skipped.items()),
            ("prompts cut to fit the model", self.truncated_prompts),
            ("sandbox network", self.sandbox.get("network", "-")),
            ("sandbox files", self.sandbox.get("files", "-")),
            ("sandbox processes", self.sandbox.get("processes", "-")),
            *((f"seconds {stage}", value) for stage, value in self.seconds.items()),
        ]
        print_summary("pcopilot eval humaneval", rows)


@dataclass
class FimReport:
    output: str
    model: str
    data: str
    split: str
    """How the held-out files were chosen."""
    overall: FimScores
    by_kind: dict[str, FimScores]
    by_repository: dict[str, FimScores]
    layout: str = "psm"
    """The prompts' layout (psm or spm)."""
    healed: bool = False
    """The prompts were token-healed (`--fim.heal`)."""
    truncated_prompts: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    exit_code: int = 0

    def print(self) -> None:
        print_summary(
            "pcopilot eval fim",
            [
                ("output", self.output),
                ("model", self.model),
                ("data", self.data),
                ("held out", self.split),
                ("holes", f"{self.overall.holes} ({self.layout} prompts{', healed' if self.healed else ''})"),
                ("exact match", _percent(self.overall.exact_match)),
                ("edit similarity", _percent(self.overall.edit_similarity)),
                ("Python still parses", _percent(self.overall.parse_rate)),
                ("prompts cut to the context", self.truncated_prompts),
                *((f"skipped: {reason}", count) for reason, count in self.skipped.items()),
                ("seconds", self.seconds),
            ],
        )
        for title, groups in (("per hole kind", self.by_kind), ("per repository", self.by_repository)):
            print_table(
                title,
                ["", "holes", "exact match", "edit similarity", "parses"],
                [
                    [name, s.holes, _percent(s.exact_match), _percent(s.edit_similarity), _percent(s.parse_rate)]
                    for name, s in groups.items()
                ],
            )


@dataclass
class LossReport:
    output: str
    model: str
    data: str
    split: str
    seq_len: int
    fim_rate: float
    scores: LossScores
    seconds: float = 0.0
    exit_code: int = 0

    def print(self) -> None:
        scores = self.scores

        def loss(value: float | None) -> str:
            return "-" if value is None else f"{value:.4f}"

        print_summary(
            "pcopilot eval loss",
            [
                ("output", self.output),
                ("model", self.model),
                ("data", self.data),
                ("held out", self.split),
                ("rows x seq_len", f"{scores.rows} x {self.seq_len}"),
                ("FIM rate", self.fim_rate),
                ("loss", loss(scores.loss)),
                ("perplexity", f"{scores.perplexity:.3f}"),
                ("loss, plain documents", f"{loss(scores.plain_loss)} ({scores.plain_tokens:,} tokens)"),
                ("loss, FIM documents", f"{loss(scores.fim_loss)} ({scores.fim_tokens:,} tokens)"),
                ("seconds", self.seconds),
            ],
        )


@dataclass
class Metric:
    """One row of the comparison: a metric's value in each column."""

    name: str
    benchmark: str
    higher_is_better: bool
    values: dict[str, float | None]

    def delta(self, column: str, baseline: str) -> float | None:
        value, base = self.values.get(column), self.values.get(baseline)
        return None if value is None or base is None else value - base


@dataclass
class CompareReport:
    output: str
    columns: dict[str, str]
    """Column name -> the model it evaluated; the first column is the base."""
    metrics: list[Metric]
    reports: dict[str, dict[str, Any]]
    """Per column, the full report of each benchmark."""
    files: dict[str, str] = field(default_factory=dict)
    """What was written where: report, table, chart."""
    seconds: float = 0.0
    exit_code: int = 0

    def print(self) -> None:
        base, *others = self.columns
        header = ["metric", base, *(part for column in others for part in (column, f"Δ {column}"))]
        rows = []
        for metric in self.metrics:
            row: list[object] = [metric.name, format_value(metric.values.get(base))]
            for column in others:
                row += [format_value(metric.values.get(column)), format_value(metric.delta(column, base), sign=True)]
            rows.append(row)
        print_table("pcopilot eval compare", header, rows)
        print_summary("written", [*self.files.items(), ("seconds", self.seconds)])


def format_value(value: float | None, sign: bool = False) -> str:
    """4 significant decimals; a sign on differences."""
    if value is None:
        return "-"
    return f"{value:+.4f}" if sign else f"{value:.4f}"
