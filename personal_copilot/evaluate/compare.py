"""The comparison's metric table (from each column's benchmark reports) and its two renderings: report.md and a bar
chart, one panel per metric."""

from __future__ import annotations

from pathlib import Path

from personal_copilot.evaluate.report import FimReport, HumanEvalReport, LossReport, Metric, format_value


def collect_metrics(columns: list[str], reports: dict[str, dict[str, object]]) -> list[Metric]:
    """The metrics of the benchmarks that ran, one value per column, in a fixed order."""
    rows: dict[str, Metric] = {}

    def put(name: str, benchmark: str, higher_is_better: bool, column: str, value: float | None) -> None:
        rows.setdefault(name, Metric(name, benchmark, higher_is_better, {})).values[column] = value

    for column in columns:
        fim, loss, humaneval = (reports[column].get(name) for name in ("fim", "loss", "humaneval"))
        if isinstance(fim, FimReport):
            put("FIM exact match", "fim", True, column, fim.overall.exact_match)
            put("FIM edit similarity", "fim", True, column, fim.overall.edit_similarity)
            put("FIM Python parses", "fim", True, column, fim.overall.parse_rate)
            for kind, scores in fim.by_kind.items():
                put(f"FIM exact match: {kind}", "fim", True, column, scores.exact_match)
        if isinstance(loss, LossReport):
            put("held-out loss", "loss", False, column, loss.scores.loss)
            put("held-out perplexity", "loss", False, column, loss.scores.perplexity)
            put("held-out loss: FIM documents", "loss", False, column, loss.scores.fim_loss)
        if isinstance(humaneval, HumanEvalReport):
            for k in ("pass@1", "pass@10", "pass@100"):
                if k in humaneval.pass_at_k:
                    put(f"HumanEval {k}", "humaneval", True, column, humaneval.pass_at_k[k])
    return [metric for metric in rows.values() if any(v is not None for v in metric.values.values())]


def write_markdown(path: Path, columns: dict[str, str], metrics: list[Metric], settings: list[str]) -> None:
    """A table with every column, and each tuned column's difference from the base."""
    base, *others = columns
    header = ["metric", base, *(part for column in others for part in (column, f"Δ {column}"))]
    lines = [
        "# Base vs tuned",
        "",
        *(f"- **{name}**: `{model}`" for name, model in columns.items()),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" + "---:|" * (len(header) - 1),
    ]
    for metric in metrics:
        arrow = "↑" if metric.higher_is_better else "↓"
        cells = [f"{metric.name} {arrow}", format_value(metric.values.get(base))]
        for column in others:
            cells += [format_value(metric.values.get(column)), format_value(metric.delta(column, base), sign=True)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "↑ higher is better, ↓ lower is better. Same settings for every column:", ""]
    lines += [f"- {setting}" for setting in settings]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot_metrics(path: Path, columns: list[str], metrics: list[Metric]) -> None:
    """One small bar chart per metric, a bar per column, values written on the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in metrics if ":" not in m.name]  # the per-kind breakdown stays in the table
    per_row = min(4, len(shown))
    rows = -(-len(shown) // per_row)
    figure, axes = plt.subplots(rows, per_row, figsize=(3.2 * per_row, 2.9 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes.flat, shown, strict=False):
        values = [metric.values.get(c) or 0.0 for c in columns]
        bars = ax.bar(range(len(columns)), values, color=colors[: len(columns)])
        ax.bar_label(bars, labels=[format_value(metric.values.get(c)) for c in columns], fontsize=7)
        ax.set_xticks(range(len(columns)), columns, fontsize=8)
        ax.set_title(f"{metric.name} {'↑' if metric.higher_is_better else '↓'}", fontsize=9)
        ax.margins(y=0.2)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
