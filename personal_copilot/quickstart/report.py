"""The quickstart's report: `report.md` and `report.html` (tables, the loss curve and the base-vs-tuned chart), and
the verdict: did the tuned model beat the base on held-out own code without forgetting general code?"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

GENERAL_LOSS_MARGIN = 0.05
"""How much the general-code loss may rise (relative) before the report calls it forgetting."""


@dataclass(frozen=True)
class Row:
    """One metric, base against tuned."""

    name: str
    group: str
    """`own code` (held-out files of the collected code) or `general code` (held-out standard library, HumanEval)."""
    base: float | None
    tuned: float | None
    higher_is_better: bool

    @property
    def delta(self) -> float | None:
        return None if self.base is None or self.tuned is None else self.tuned - self.base

    @property
    def improved(self) -> bool | None:
        """True when tuned is better, False when worse, None when equal or unknown."""
        if not self.delta:
            return None
        return self.delta > 0 if self.higher_is_better else self.delta < 0

    @property
    def mark(self) -> str:
        return {True: "better", False: "worse", None: "same" if self.delta == 0 else ""}[self.improved]


@dataclass
class Verdict:
    own_code_better: bool
    general_code_kept: bool
    lines: list[str] = field(default_factory=list)


def judge(rows: list[Row]) -> Verdict:
    """Tuned must beat base on own-code loss and FIM edit similarity, and keep the general-code loss within
    GENERAL_LOSS_MARGIN; the lines say so in words, including when it did not."""
    by_name = {row.name: row for row in rows}
    own = [by_name[n] for n in ("own-code loss", "FIM edit similarity") if n in by_name]
    own_better = bool(own) and all(row.improved for row in own)
    general = by_name.get("general-code loss")
    kept = general is None or (
        general.base is not None
        and general.tuned is not None
        and general.tuned <= general.base * (1 + GENERAL_LOSS_MARGIN)
    )
    lines = []
    for row in own:
        word = "better" if row.improved else "NOT better"
        lines.append(f"{row.name}: tuned {_fmt(row.tuned)} vs base {_fmt(row.base)}, {word}")
    if general is not None:
        word = "kept" if kept else f"rose by more than {GENERAL_LOSS_MARGIN:.0%} (forgetting)"
        lines.append(f"general-code loss: tuned {_fmt(general.tuned)} vs base {_fmt(general.base)}, {word}")
    return Verdict(own_better, kept, lines)


def _fmt(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


@dataclass
class ReportContent:
    """Everything the report shows."""

    title: str
    facts: list[tuple[str, str]]
    rows: list[Row]
    verdict: Verdict
    images: dict[str, str]
    """Caption -> image path relative to the report."""
    commands: list[tuple[str, str]]
    """What to do next -> the command that does it."""


def render_markdown(content: ReportContent) -> str:
    """The report as Markdown."""
    title, facts, rows, verdict = content.title, content.facts, content.rows, content.verdict
    images, commands = content.images, content.commands
    lines = [f"# {title}", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts), ""]
    lines += ["## Base vs tuned", "", "| metric | group | base | tuned | Δ | |", "|---|---|---:|---:|---:|---|"]
    for row in rows:
        values = f"{_fmt(row.base)} | {_fmt(row.tuned)} | {_fmt(row.delta, True)}"
        lines.append(f"| {row.name} | {row.group} | {values} | {row.mark} |")
    status = "✅" if verdict.own_code_better and verdict.general_code_kept else "⚠️"
    lines += ["", f"**Verdict {status}**", "", *(f"- {line}" for line in verdict.lines), ""]
    for caption, path in images.items():
        lines += [f"![{caption}]({path})", ""]
    lines += ["## Next", ""]
    for what, command in commands:
        lines += [f"{what}:", "", "```bash", command, "```", ""]
    return "\n".join(lines)


def render_html(content: ReportContent) -> str:
    """The same report as one HTML page (images referenced relatively)."""
    e = html.escape
    title, facts, rows, verdict = content.title, content.facts, content.rows, content.verdict
    images, commands = content.images, content.commands
    fact_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    metric_rows = "".join(
        f"<tr><td>{e(r.name)}</td><td>{e(r.group)}</td><td>{_fmt(r.base)}</td><td>{_fmt(r.tuned)}</td>"
        f"<td>{_fmt(r.delta, True)}</td><td class='{'good' if r.improved else 'bad'}'>{r.mark}</td></tr>"
        for r in rows
    )
    verdict_items = "".join(f"<li>{e(line)}</li>" for line in verdict.lines)
    figures = "".join(
        f"<figure><img src='{e(p)}' alt='{e(c)}'><figcaption>{e(c)}</figcaption></figure>" for c, p in images.items()
    )
    command_blocks = "".join(f"<p>{e(w)}:</p><pre>{e(c)}</pre>" for w, c in commands)
    ok = verdict.own_code_better and verdict.general_code_kept
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
th {{ text-align: left; background: #f5f5f5; }} td {{ text-align: right; }} td:first-child {{ text-align: left; }}
.good {{ color: #167a2b; }} .bad {{ color: #b3261e; }} pre {{ background: #f5f5f5; padding: .6rem; overflow-x: auto; }}
.verdict {{ padding: .6rem 1rem; border-left: 4px solid {"#167a2b" if ok else "#b3261e"}; background: #fafafa; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{e(title)}</h1>
<table>{fact_rows}</table>
<h2>Base vs tuned</h2>
<table><tr><th>metric</th><th>group</th><th>base</th><th>tuned</th><th>Δ</th><th></th></tr>{metric_rows}</table>
<div class="verdict"><strong>Verdict:</strong><ul>{verdict_items}</ul></div>
{figures}
<h2>Next</h2>
{command_blocks}
</body></html>
"""


def write_reports(out: Path, content: ReportContent) -> dict[str, Path]:
    """Writes `report.md` and `report.html` into `out`."""
    markdown, page = out / "report.md", out / "report.html"
    markdown.write_text(render_markdown(content), encoding="utf-8")
    page.write_text(render_html(content), encoding="utf-8")
    return {"markdown": markdown, "html": page}
