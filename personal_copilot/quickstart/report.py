"""The quickstart's report: `report.md` and `report.html` (tables, the loss curve and the base-vs-tuned chart), and
the verdict: did the tuned model beat the base on held-out own code without forgetting general code?"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

GENERAL_MARGIN = 0.05
"""How much the general-code bits per byte may rise (relative) before the report calls it forgetting."""
REGRESSION_MARGIN = 0.05
"""A metric that gets worse by more than this (relative) is named as a regression in the verdict."""
OWN_CODE_REQUIRED = ("own-code loss", "FIM exact match")
"""Tuned beats base on own code when it is better on both: it predicts the code better and completes more holes."""


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
    regressions: list[str] = field(default_factory=list)
    """Metrics that got worse by more than REGRESSION_MARGIN."""

    @property
    def headline(self) -> str:
        if not self.own_code_better:
            return "tuned does NOT beat base on your code"
        if not self.general_code_kept:
            return "tuned beats base on your code but FORGETS general code"
        if self.regressions:
            return f"tuned beats base on your code, with regressions: {', '.join(self.regressions)}"
        return "tuned beats base on your code and keeps general code"


def _relative_worsening(row: Row) -> float:
    if row.base is None or row.tuned is None or row.improved is not False:
        return 0.0
    return abs(row.tuned - row.base) / max(abs(row.base), 1e-9)


def judge(rows: list[Row]) -> Verdict:
    """Tuned must beat base on own-code loss and FIM exact match, keep the general-code bits per byte within
    GENERAL_MARGIN, and every metric that got worse by more than REGRESSION_MARGIN is named; the lines say so in
    words, including when it did not."""
    by_name = {row.name: row for row in rows}
    own = [by_name[n] for n in OWN_CODE_REQUIRED if n in by_name]
    own_better = len(own) == len(OWN_CODE_REQUIRED) and all(row.improved for row in own)
    general = by_name.get("general-code bits per byte")
    kept = general is None or (
        general.base is not None and general.tuned is not None and general.tuned <= general.base * (1 + GENERAL_MARGIN)
    )
    lines = []
    for row in own:
        word = "better" if row.improved else "NOT better"
        lines.append(f"{row.name}: tuned {_fmt(row.tuned)} vs base {_fmt(row.base)}, {word}")
    if general is not None:
        word = "kept" if kept else f"rose by more than {GENERAL_MARGIN:.0%} (forgetting)"
        lines.append(f"{general.name}: tuned {_fmt(general.tuned)} vs base {_fmt(general.base)}, {word}")
    regressions = [row for row in rows if _relative_worsening(row) > REGRESSION_MARGIN and row is not general]
    for row in regressions:
        lines.append(f"regression: {row.name} went from {_fmt(row.base)} to {_fmt(row.tuned)}")
    return Verdict(own_better, kept, lines, [row.name for row in regressions])


def _fmt(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


@dataclass(frozen=True)
class Example:
    """A held-out hole with the base's and the tuned model's completions."""

    where: str
    kind: str
    before: str
    truth: str
    after: str
    base: str
    tuned: str
    language: str = ""
    """The code fence's language (`python`, `yaml` …), empty when unknown."""


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
    examples: list[Example] = field(default_factory=list)


def render_markdown(content: ReportContent) -> str:
    """The report as Markdown."""
    title, facts, rows, verdict = content.title, content.facts, content.rows, content.verdict
    images, commands = content.images, content.commands
    lines = [f"# {title}", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts), ""]
    lines += ["## Base vs tuned", "", "| metric | group | base | tuned | Δ | |", "|---|---|---:|---:|---:|---|"]
    for row in rows:
        values = f"{_fmt(row.base)} | {_fmt(row.tuned)} | {_fmt(row.delta, True)}"
        lines.append(f"| {row.name} | {row.group} | {values} | {row.mark} |")
    status = "✅" if verdict.own_code_better and verdict.general_code_kept and not verdict.regressions else "⚠️"
    lines += ["", f"**Verdict {status}: {verdict.headline}**", "", *(f"- {line}" for line in verdict.lines), ""]
    if content.examples:
        lines += ["## Held-out holes, side by side", ""]
    for example in content.examples:
        lines += [
            f"`{example.where}` ({example.kind})",
            "",
            f"```{example.language}",
            f"{example.before}█{example.after}",
            "```",
        ]
        lines += ["| | middle |", "|---|---|"]
        lines += [f"| {name} | `{_inline(text)}` |" for name, text in _middles(example)]
        lines.append("")
    for caption, path in images.items():
        lines += [f"![{caption}]({path})", ""]
    lines += ["## Next", ""]
    for what, command in commands:
        lines += [f"{what}:", "", "```bash", command, "```", ""]
    return "\n".join(lines)


def _middles(example: Example) -> list[tuple[str, str]]:
    return [("truth", example.truth), ("base", example.base), ("tuned", example.tuned)]


def _inline(text: str) -> str:
    return text.replace("\n", "⏎").replace("|", "\\|").replace("`", "'") or "(nothing)"


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
    example_blocks = "".join(
        f"<h3><code>{e(x.where)}</code> ({e(x.kind)})</h3><pre>{e(x.before)}<mark>█</mark>{e(x.after)}</pre>"
        "<table>"
        + "".join(f"<tr><th>{n}</th><td><pre>{e(t) or '(nothing)'}</pre></td></tr>" for n, t in _middles(x))
        + "</table>"
        for x in content.examples
    )
    if example_blocks:
        example_blocks = "<h2>Held-out holes, side by side</h2>" + example_blocks
    ok = verdict.own_code_better and verdict.general_code_kept and not verdict.regressions
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
th {{ text-align: left; background: #f5f5f5; }} td {{ text-align: right; }} td:first-child {{ text-align: left; }}
td pre {{ text-align: left; margin: 0; }}
.good {{ color: #167a2b; }} .bad {{ color: #b3261e; }} pre {{ background: #f5f5f5; padding: .6rem; overflow-x: auto; }}
.verdict {{ padding: .6rem 1rem; border-left: 4px solid {"#167a2b" if ok else "#b3261e"}; background: #fafafa; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{e(title)}</h1>
<table>{fact_rows}</table>
<h2>Base vs tuned</h2>
<table><tr><th>metric</th><th>group</th><th>base</th><th>tuned</th><th>Δ</th><th></th></tr>{metric_rows}</table>
<div class="verdict"><strong>Verdict: {e(verdict.headline)}</strong><ul>{verdict_items}</ul></div>
{example_blocks}
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
