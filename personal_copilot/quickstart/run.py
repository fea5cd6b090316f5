"""`pcopilot quickstart` and `pcopilot base`: the whole loop composed from the stages' run functions.

pcopilot quickstart            # collect -> base -> LoRA FIM fine-tune -> evaluate base vs tuned -> report
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import personal_copilot
from personal_copilot.collect import CollectConfig, CollectReport, run_collect
from personal_copilot.configs import write_report, write_run_config
from personal_copilot.console import print_summary, stderr
from personal_copilot.quickstart.base import RECIPES, BaseModel, build_base
from personal_copilot.quickstart.config import BaseConfig, QuickstartConfig
from personal_copilot.train import LoraSettings, OptimSettings, TrainConfig, TrainReport, run_train


@dataclass(frozen=True)
class TuneRecipe:
    """The LoRA fine-tune on the user's code."""

    max_steps: int
    batch_size: int
    learning_rate: float
    rank: int
    eval_fraction: float


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
    "default": TuneRecipe(max_steps=300, batch_size=8, learning_rate=2e-3, rank=16, eval_fraction=0.2),
    "test": TuneRecipe(max_steps=4, batch_size=2, learning_rate=1e-2, rank=4, eval_fraction=0.3),
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
    seconds: float
    exit_code: int = 0

    def print(self) -> None:
        print_summary(
            "pcopilot quickstart",
            [
                ("files collected", self.collect.files_kept),
                ("base model", f"{self.base.model_dir} ({'cached' if self.base.reused else 'built'})"),
                ("fine-tuned adapter", self.train.output),
                ("eval loss after tuning", "-" if self.train.eval_loss is None else f"{self.train.eval_loss:.4f}"),
                ("seconds", self.seconds),
            ],
        )


def run_quickstart(config: QuickstartConfig) -> QuickstartReport:
    """Runs the loop into `config.output` and returns the reports of its steps."""
    start = time.perf_counter()
    out = config.output
    sources = config.sources or [str(project_source())]
    stderr.print("[bold]1/3[/bold] collecting your code …")
    collect = run_collect(CollectConfig(sources=sources, output=out / "data", workers=config.workers))
    stderr.print("[bold]2/3[/bold] building or reusing the base model …")
    base = build_base(RECIPES[config.profile], config.base_cache_dir, config.rebuild_base)
    stderr.print("[bold]3/3[/bold] fine-tuning it on your code (LoRA, FIM) …")
    recipe, base_recipe = TUNE_RECIPES[config.profile], RECIPES[config.profile]
    train = run_train(
        TrainConfig(
            model=str(base.model_dir),
            data=[str(out / "data")],
            output=out / "run",
            method="lora",
            seq_len=base_recipe.seq_len,
            max_steps=recipe.max_steps,
            batch_size=recipe.batch_size,
            gradient_accumulation_steps=1,
            eval_fraction=recipe.eval_fraction,
            eval_steps=max(1, recipe.max_steps // 4),
            save_steps=recipe.max_steps,
            logging_steps=max(1, recipe.max_steps // 30),
            resume=(out / "run").is_dir() and any((out / "run").glob("checkpoint-*")),
            precision="fp32",
            gradient_checkpointing=False,
            lora=LoraSettings(r=recipe.rank, alpha=2 * recipe.rank),
            optim=OptimSettings(learning_rate=recipe.learning_rate, warmup_steps=max(1, recipe.max_steps // 20)),
        )
    )
    report = QuickstartReport(
        collect=collect,
        base=_base_report(base),
        train=train,
        seconds=round(time.perf_counter() - start, 1),
        exit_code=collect.exit_code,
    )
    write_run_config(out, "quickstart", config)
    write_report(out, report)
    return report
