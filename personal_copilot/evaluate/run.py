"""`pcopilot eval humaneval | fim | loss | compare`: resolve the model and the held-out data, run the benchmarks,
write the report.

    pcopilot eval humaneval --model bigcode/starcoderbase-1b --humaneval.limit 20 --output eval/he
    pcopilot eval humaneval --completions samples.jsonl --output eval/he-check
    pcopilot eval fim --model runs/sc1b-lora --fim.num_examples 300 --output eval/fim
    pcopilot eval loss --model runs/sc1b-lora --output eval/loss
    pcopilot eval compare --model bigcode/starcoderbase-1b --adapter runs/sc1b-lora --adapter_weight 0.8

Python: `run_fim(FimEvalConfig(model="runs/sc1b-lora", fim=FimSettings(num_examples=100)))`, and likewise for the
others.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from personal_copilot.configs import RunRecord, to_plain, write_report, write_run_config
from personal_copilot.errors import PcopilotError
from personal_copilot.evaluate.benchmarks import (
    RowSettings,
    evaluate_completions,
    evaluate_fim,
    evaluate_humaneval,
    evaluate_loss,
    fim_generator,
    fim_tasks,
    open_sandbox,
    seed_everything,
)
from personal_copilot.evaluate.compare import collect_metrics, plot_metrics, write_markdown
from personal_copilot.evaluate.config import CompareConfig, FimEvalConfig, HumanEvalConfig, LossConfig
from personal_copilot.evaluate.generation import ModelGenerator
from personal_copilot.evaluate.heldout import HeldOut, resolve_held_out
from personal_copilot.evaluate.holes import FimTask
from personal_copilot.evaluate.models import ModelSpec, free_accelerator_memory, load_for_eval, resolve_model
from personal_copilot.evaluate.report import CompareReport, FimReport, HumanEvalReport, LossReport
from personal_copilot.evaluate.sandbox import Sandbox
from personal_copilot.model_ref import resolve_model_ref


def run_humaneval(config: HumanEvalConfig) -> HumanEvalReport:
    """HumanEval pass@k of a model, or of the completions in `config.completions`; writes OUTPUT/samples.jsonl,
    OUTPUT/report.json and OUTPUT/pcopilot_config.yaml."""
    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    if config.completions is None:
        spec, _ = resolve_model(config)
        generator = ModelGenerator(load_for_eval(spec, config.precision), batch_size=config.batch_size)
        with open_sandbox(config.humaneval) as sandbox:
            report = evaluate_humaneval(generator, config.humaneval, sandbox, out, config.seed)
        details: dict[str, Any] = {"model": to_plain(spec)}
    else:
        with open_sandbox(config.humaneval) as sandbox:
            report = evaluate_completions(config.completions, config.humaneval.limit, sandbox, out)
        details = {}
    write_run_config(out, "eval humaneval", config, details=details)
    write_report(out, report)
    return report


def run_fim(config: FimEvalConfig) -> FimReport:
    """The FIM benchmark on the held-out files; writes OUTPUT/holes.jsonl, report.json and pcopilot_config.yaml."""
    spec, record = resolve_model(config)
    held_out = resolve_held_out(config.data, record, config.eval_fraction, config.seed, config.split_by)
    tasks, skipped = fim_tasks(held_out, config.fim, config.seed)
    seed_everything(config.seed)
    generator = fim_generator(load_for_eval(spec, config.precision), config.fim, config.batch_size)
    report = evaluate_fim(generator, tasks, held_out, config.fim, config.output)
    report.skipped = skipped
    write_run_config(config.output, "eval fim", config, details={"model": to_plain(spec)})
    write_report(config.output, report)
    return report


def run_loss(config: LossConfig) -> LossReport:
    """Held-out loss and perplexity; writes OUTPUT/report.json and pcopilot_config.yaml."""
    spec, record = resolve_model(config)
    held_out = resolve_held_out(config.data, record, config.eval_fraction, config.seed, config.split_by)
    loaded = load_for_eval(spec, config.precision)
    rows = RowSettings.of(config.loss, record, config.seed, loaded.max_positions)
    report = evaluate_loss(loaded, held_out, config.loss, rows, config.batch_size, config.output)
    write_run_config(config.output, "eval loss", config, details={"model": to_plain(spec), "rows": to_plain(rows)})
    write_report(config.output, report)
    return report


def compare_columns(spec: ModelSpec, record: RunRecord | None) -> dict[str, ModelSpec]:
    """The models compared: the base, the tuned model, and the adapter at its weight when that is not 1; a whole
    tuned model (full fine-tune, merged) is compared with the base its record names.

    Raises:
        PcopilotError: nothing tuned to compare.
    """
    if spec.adapter is not None:
        columns = {"base": spec.without_adapter(), "tuned": replace(spec, adapter_weight=1.0)}
        if spec.adapter_weight != 1.0:
            columns[f"tuned x{spec.adapter_weight:g}"] = spec
        return columns
    if record is None or record.base_model is None:
        raise PcopilotError(
            f"--model {spec.base} records no base it was tuned from, and no --adapter is given: nothing tuned to "
            "compare with. Use --model BASE --adapter ADAPTER_OR_RUN, or --model RUN_DIR"
        )
    base = resolve_model_ref(record.base_model, f"the base of {spec.base}")
    return {"base": ModelSpec(base.base, base.tokenizer, family=spec.family), "tuned": spec}


def _settings_lines(config: CompareConfig, reports: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(reports.values()))
    lines = [f"precision {config.precision}, batch size {config.batch_size}, seed {config.seed}"]
    own_code = first.get("fim") or first.get("loss")
    if own_code:
        lines.append(f"your code: {own_code.data}, {own_code.split}")
    if "fim" in first:
        fim = first["fim"]
        lines.append(
            f"FIM: {fim.overall.holes} holes ({', '.join(config.fim.kinds)}); "
            f"{fim.layout} prompts of up to {config.fim.context_tokens} tokens, "
            f"{config.fim.max_new_tokens} new tokens, greedy{', token healing' if fim.healed else ''}"
        )
    if "loss" in first:
        loss = first["loss"]
        lines.append(f"loss: {loss.scores.rows} held-out rows of {loss.seq_len} tokens, FIM rate {loss.fim_rate}")
    if "humaneval" in first:
        he = first["humaneval"]
        generation = he.generation or {}
        lines.append(
            f"HumanEval: {he.problems} problems x {generation.get('num_samples')} samples, temperature "
            f"{generation.get('temperature')}, {generation.get('max_new_tokens')} new tokens; sandbox: "
            f"{he.sandbox.get('limits')}, network {he.sandbox.get('network')}"
        )
    return lines


@dataclass
class _SharedInputs:
    """What every column of a comparison is evaluated on: the same held-out files, holes and sandbox."""

    held_out: HeldOut | None
    tasks: list[FimTask]
    skipped: dict[str, int]
    sandbox: Sandbox | None
    record: RunRecord | None


def _evaluate_column(column: ModelSpec, config: CompareConfig, shared: _SharedInputs, out: Path) -> dict[str, Any]:
    """The reports of one column; its model is loaded here and unreachable once this returns."""
    loaded = load_for_eval(column, config.precision)
    reports: dict[str, Any] = {}
    if "fim" in config.benchmarks:
        seed_everything(config.seed)
        generator = fim_generator(loaded, config.fim, config.batch_size)
        reports["fim"] = evaluate_fim(generator, shared.tasks, shared.held_out, config.fim, out)
        reports["fim"].skipped = shared.skipped
    if "loss" in config.benchmarks:
        rows = RowSettings.of(config.loss, shared.record, config.seed, loaded.max_positions)
        reports["loss"] = evaluate_loss(loaded, shared.held_out, config.loss, rows, config.batch_size, out)
    if "humaneval" in config.benchmarks:
        generator = ModelGenerator(loaded, batch_size=config.batch_size)
        reports["humaneval"] = evaluate_humaneval(generator, config.humaneval, shared.sandbox, out, config.seed)
    return reports


def run_compare(config: CompareConfig) -> CompareReport:
    """Every benchmark on every column with the same settings; writes report.md, report.json, compare.png, the
    resolved config, and each column's holes and samples under OUTPUT/<column>/."""
    start = time.perf_counter()
    spec, record = resolve_model(config)
    columns = compare_columns(spec, record)
    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    held_out = None
    if {"fim", "loss"} & set(config.benchmarks):
        held_out = resolve_held_out(config.data, record, config.eval_fraction, config.seed, config.split_by)
    tasks, skipped = fim_tasks(held_out, config.fim, config.seed) if "fim" in config.benchmarks else ([], {})
    reports: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        sandbox = stack.enter_context(open_sandbox(config.humaneval)) if "humaneval" in config.benchmarks else None
        shared = _SharedInputs(held_out, tasks, skipped, sandbox, record)
        for name, column in columns.items():
            reports[name] = _evaluate_column(column, config, shared, out / name.replace(" ", "-"))
            free_accelerator_memory()  # the column's model, before the next one is loaded
    metrics = collect_metrics(list(columns), reports)
    described = {name: column.describe() for name, column in columns.items()}
    write_markdown(out / "report.md", described, metrics, _settings_lines(config, reports))
    plot_metrics(out / "compare.png", list(columns), metrics)
    report = CompareReport(
        output=str(out),
        columns=described,
        metrics=metrics,
        reports=reports,
        files={"report": str(out / "report.json"), "table": str(out / "report.md"), "chart": str(out / "compare.png")},
        seconds=round(time.perf_counter() - start, 2),
    )
    write_run_config(out, "eval compare", config, details={"columns": to_plain(columns)})
    write_report(out, report)
    return report
