"""`pcopilot quickstart` and `pcopilot base`: the whole loop composed from the stages' run functions.

pcopilot quickstart            # collect -> base -> LoRA FIM fine-tune -> evaluate base vs tuned -> report
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import personal_copilot
from personal_copilot.collect import CollectConfig, CollectReport, run_collect
from personal_copilot.configs import write_report, write_run_config
from personal_copilot.console import print_summary, print_table, stderr, stdout
from personal_copilot.errors import PcopilotError
from personal_copilot.evaluate import (
    CompareConfig,
    CompareReport,
    FimSettings,
    HumanEvalSettings,
    LossSettings,
    run_compare,
)
from personal_copilot.quickstart.base import RECIPES, BaseModel, build_base, replay_file
from personal_copilot.quickstart.config import BaseConfig, QuickstartConfig
from personal_copilot.quickstart.report import ReportContent, Row, Verdict, judge, write_reports
from personal_copilot.train import LoraSettings, OptimSettings, TrainConfig, TrainReport, run_train


@dataclass(frozen=True)
class TuneRecipe:
    """The LoRA fine-tune on the user's code."""

    max_steps: int
    batch_size: int
    learning_rate: float
    rank: int
    eval_fraction: float
    """Share of your files held out for the evaluation (your code is one repository: the split is by file)."""
    replay_weight: float
    """Weight of the base's own training files mixed into the fine-tune (against 1 for your code): replaying some
    general code keeps the tuned model from forgetting it. The files the base held out are not replayed."""


@dataclass(frozen=True)
class EvalRecipe:
    """How base and tuned are compared (identical settings for both)."""

    fim_examples: int
    fim_max_new_tokens: int
    loss_rows: int
    humaneval_problems: int
    humaneval_max_new_tokens: int


EVAL_RECIPES = {
    "default": EvalRecipe(
        fim_examples=200, fim_max_new_tokens=48, loss_rows=64, humaneval_problems=5, humaneval_max_new_tokens=128
    ),
    "test": EvalRecipe(
        fim_examples=6, fim_max_new_tokens=8, loss_rows=4, humaneval_problems=1, humaneval_max_new_tokens=16
    ),
}
TUNE_RECIPES = {
    "default": TuneRecipe(
        max_steps=300, batch_size=8, learning_rate=2e-3, rank=16, eval_fraction=0.2, replay_weight=0.25
    ),
    "test": TuneRecipe(max_steps=4, batch_size=2, learning_rate=1e-2, rank=4, eval_fraction=0.3, replay_weight=0.25),
}


def project_source() -> Path:
    """The source tree to learn from by default: the repository checkout when running from one, else the package."""
    package = Path(personal_copilot.__file__).resolve().parent
    checkout = package.parent
    return checkout if (checkout / "pyproject.toml").is_file() else package


@dataclass
class BaseReport:
    model_dir: str
    key: str
    reused: bool
    eval_loss: float | None
    build_seconds: float
    general_split: dict = field(default_factory=dict)
    exit_code: int = 0

    def print(self) -> None:
        print_summary(
            "pcopilot base",
            [
                ("model", self.model_dir),
                ("recipe key", self.key),
                ("reused from cache", "yes" if self.reused else "no, built now"),
                ("held-out loss (stdlib)", "-" if self.eval_loss is None else f"{self.eval_loss:.4f}"),
                ("build seconds", self.build_seconds),
            ],
        )


def _base_report(base: BaseModel) -> BaseReport:
    return BaseReport(
        model_dir=str(base.model_dir),
        key=base.key,
        reused=base.reused,
        eval_loss=base.eval_loss,
        build_seconds=base.build_seconds,
        general_split=base.general_split,
    )


def run_base(config: BaseConfig) -> BaseReport:
    """Builds (or finds in the cache) the embedded base model of a profile."""
    return _base_report(build_base(RECIPES[config.profile], config.cache_dir, config.rebuild))


@dataclass
class QuickstartReport:
    collect: CollectReport
    base: BaseReport
    train: TrainReport
    rows: list[Row]
    verdict: Verdict
    files: dict[str, str]
    commands: list[tuple[str, str]]
    seconds: float
    exit_code: int = 0

    def print(self) -> None:
        print_summary(
            "pcopilot quickstart",
            [
                ("files collected", self.collect.files_kept),
                ("base model", f"{self.base.model_dir} ({'cached' if self.base.reused else 'built now'})"),
                ("fine-tuned adapter", self.train.output),
                ("seconds", self.seconds),
                *self.files.items(),
            ],
        )
        print_table(
            "base vs tuned (held-out files)",
            ["metric", "group", "base", "tuned", "Δ"],
            [(r.name, r.group, _cell(r.base), _cell(r.tuned), _cell(r.delta, True)) for r in self.rows],
        )
        status = (
            "[green]tuned beats base[/green]"
            if self.verdict.own_code_better
            else "[red]tuned does NOT beat base[/red]"
        )
        kept = "general code kept" if self.verdict.general_code_kept else "[red]general code forgotten[/red]"
        stdout.print(f"verdict: {status}, {kept}")
        for line in self.verdict.lines:
            stdout.print(f"  - {line}", soft_wrap=True)
        for what, command in self.commands:
            stdout.print(f"\n{what}:\n  {command}", soft_wrap=True, highlight=False)


def _cell(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def _tune(config: QuickstartConfig, base: BaseModel, out: Path) -> TrainReport:
    recipe, base_recipe = TUNE_RECIPES[config.profile], RECIPES[config.profile]
    run = out / "run"
    return run_train(
        TrainConfig(
            model=str(base.model_dir),
            data=[str(out / "data"), f"{replay_file(base)}:{recipe.replay_weight}"],
            output=run,
            method="lora",
            seq_len=base_recipe.seq_len,
            max_steps=recipe.max_steps,
            batch_size=recipe.batch_size,
            gradient_accumulation_steps=1,
            eval_fraction=recipe.eval_fraction,
            eval_steps=max(1, recipe.max_steps // 4),
            save_steps=recipe.max_steps,
            logging_steps=max(1, recipe.max_steps // 30),
            resume=run.is_dir() and any(run.glob("checkpoint-*")),
            precision="fp32",
            gradient_checkpointing=False,
            lora=LoraSettings(r=recipe.rank, alpha=2 * recipe.rank),
            optim=OptimSettings(learning_rate=recipe.learning_rate, warmup_steps=max(1, recipe.max_steps // 20)),
        )
    )


def _evaluate(config: QuickstartConfig, base: BaseModel, out: Path) -> tuple[list[Row], dict[str, str]]:
    """Base vs tuned with identical settings: FIM, loss and a few HumanEval problems on held-out own code, and the
    loss on the standard-library files the base held out (general code, the forgetting check)."""
    recipe = EVAL_RECIPES[config.profile]
    shared = {"model": str(out / "run"), "precision": "fp32", "seed": 0}
    own = run_compare(
        CompareConfig(
            **shared,
            output=out / "eval" / "own_code",
            fim=FimSettings(num_examples=recipe.fim_examples, max_new_tokens=recipe.fim_max_new_tokens),
            loss=LossSettings(max_rows=recipe.loss_rows),
            humaneval=HumanEvalSettings(
                limit=recipe.humaneval_problems, max_new_tokens=recipe.humaneval_max_new_tokens, workers=config.workers
            ),
        )
    )
    general = run_compare(
        CompareConfig(
            **shared,
            data=str(base.data_dir),
            eval_fraction=base.recipe.eval_fraction,
            output=out / "eval" / "general_code",
            benchmarks=["loss"],
            loss=LossSettings(max_rows=recipe.loss_rows),
        )
    )
    rows = _rows(own, {"held-out loss": ("own-code loss", "own code")}) + _rows(
        general, {"held-out loss": ("general-code loss", "general code")}, only=("held-out loss",)
    )
    return rows, {"own-code comparison": own.files["table"], "general-code comparison": general.files["table"]}


_GROUPS = {"fim": "own code", "loss": "own code", "humaneval": "general code"}


def _rows(
    report: CompareReport, renames: dict[str, tuple[str, str]], only: tuple[str, ...] | None = None
) -> list[Row]:
    base, tuned = list(report.columns)[:2]
    rows = []
    for metric in report.metrics:
        if only is not None and metric.name not in only:
            continue
        name, group = renames.get(metric.name, (metric.name, _GROUPS[metric.benchmark]))
        rows.append(Row(name, group, metric.values.get(base), metric.values.get(tuned), metric.higher_is_better))
    return rows


def _next_commands(out: Path, family: str | None) -> list[tuple[str, str]]:
    run = out / "run"
    return [
        (
            "Serve the tuned model to your editor (TGI, OpenAI, Ollama and llama.cpp protocols)",
            f"pcopilot serve --model {run}",
        ),
        (
            "Settings for llm-vscode (or --client continue / tabby)",
            f"pcopilot export editor --client llm-vscode --url http://127.0.0.1:8080 --model {run.name} "
            f"--family {family or 'starcoder'}",
        ),
        ("Run it with llama.cpp / Ollama", f"pcopilot export gguf --model {run} --output {out / 'model.gguf'}"),
    ]


def _images(out: Path, base: BaseModel) -> dict[str, str]:
    images = {}
    if (base.model_dir / "loss.png").is_file():
        shutil.copyfile(base.model_dir / "loss.png", out / "base_pretraining_loss.png")
        images["base model: pretraining loss on the standard library"] = "base_pretraining_loss.png"
    candidates = {
        "fine-tuning loss on your code": out / "run" / "loss.png",
        "base vs tuned on your held-out files": out / "eval" / "own_code" / "compare.png",
    }
    images |= {caption: str(path.relative_to(out)) for caption, path in candidates.items() if path.is_file()}
    return images


def run_quickstart(config: QuickstartConfig) -> QuickstartReport:
    """Runs the loop into `config.output` and returns the reports of its steps."""
    start = time.perf_counter()
    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    sources = config.sources or [str(project_source())]
    stderr.print("[bold]1/5[/bold] collecting your code …")
    collect = run_collect(CollectConfig(sources=sources, output=out / "data", workers=config.workers))
    if collect.files_kept == 0:
        raise PcopilotError(f"no code collected from {', '.join(sources)}: see {out / 'data' / 'report.json'}")
    stderr.print("[bold]2/5[/bold] building or reusing the base model (first time: several minutes) …")
    base = build_base(RECIPES[config.profile], config.base_cache_dir, config.rebuild_base)
    stderr.print("[bold]3/5[/bold] fine-tuning it on your code (LoRA, FIM) …")
    train = _tune(config, base, out)
    stderr.print("[bold]4/5[/bold] evaluating base vs tuned on held-out files …")
    rows, tables = _evaluate(config, base, out)
    stderr.print("[bold]5/5[/bold] writing the report …")
    verdict = judge(rows)
    commands = _next_commands(out, train.family)
    facts = [
        ("code", ", ".join(sources)),
        ("files kept / dropped", f"{collect.files_kept} / {sum(collect.dropped.values())}"),
        ("base model", f"{base.recipe.model}, {base.recipe.max_steps} steps on the standard library ({base.key})"),
        (
            "fine-tune",
            f"LoRA r={TUNE_RECIPES[config.profile].rank}, {train.steps} steps, {train.tokens_seen:,} tokens",
        ),
        *tables.items(),
    ]
    content = ReportContent("personal-copilot quickstart", facts, rows, verdict, _images(out, base), commands)
    written = write_reports(out, content)
    report = QuickstartReport(
        collect=collect,
        base=_base_report(base),
        train=train,
        rows=rows,
        verdict=verdict,
        files={"report (markdown)": str(written["markdown"]), "report (html)": str(written["html"])},
        commands=commands,
        seconds=round(time.perf_counter() - start, 1),
        exit_code=collect.exit_code,
    )
    write_run_config(out, "quickstart", config)
    write_report(out, report)
    return report
