"""`pcopilot eval compare` on the tiny model and its adapter: both columns (and the weighted one), the difference,
the chart, and the same holes and rows for every column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from personal_copilot.cli import main
from personal_copilot.configs import RunRecord
from personal_copilot.errors import PcopilotError
from personal_copilot.evaluate import CompareConfig, ModelSpec
from personal_copilot.evaluate.run import compare_columns


def test_compare_writes_both_columns_the_difference_and_a_chart(
    lora_run: Path, tiny_models: dict, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "compare"
    argv = ["eval", "compare", "--model", str(tiny_models["llama"]), "--adapter", str(lora_run)]
    argv += ["--adapter_weight", "0.8", "--precision", "fp32", "--output", str(out), "--fim.num_examples", "6"]
    argv += ["--fim.max_new_tokens", "4", "--loss.max_rows", "8", "--humaneval.limit", "2"]
    argv += ["--humaneval.max_new_tokens", "4", "--humaneval.workers", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "tuned x0.8" in printed and "held-out loss" in printed

    report = json.loads((out / "report.json").read_text())
    assert list(report["columns"]) == ["base", "tuned", "tuned x0.8"]
    metrics = {m["name"]: m["values"] for m in report["metrics"]}
    assert {"FIM exact match", "FIM edit similarity", "held-out loss", "HumanEval pass@1"} <= set(metrics)
    loss = metrics["held-out loss"]
    assert loss["base"] != loss["tuned"] and loss["tuned"] != loss["tuned x0.8"]  # the adapter, and its scaling, act
    assert report["reports"]["base"]["humaneval"]["samples"] == 2

    table = (out / "report.md").read_text()
    assert "| metric | base | tuned | Δ tuned | tuned x0.8 | Δ tuned x0.8 |" in table
    loss_row = next(line for line in table.splitlines() if line.startswith("| held-out loss ↓"))
    assert f"{loss['tuned'] - loss['base']:+.4f}" in loss_row
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    where = {}
    for column in ("base", "tuned", "tuned-x0.8"):
        holes = map(json.loads, (out / column / "holes.jsonl").read_text().splitlines())
        where[column] = [(h["file_path"], h["line"], h["middle"]) for h in holes]
    assert where["base"] == where["tuned"] == where["tuned-x0.8"] and len(where["base"]) == 6
    rows = {c: report["reports"][c]["loss"]["scores"]["tokens"] for c in report["columns"]}
    assert len(set(rows.values())) == 1
    saved = yaml.safe_load((out / "pcopilot_config.yaml").read_text())
    assert saved["stage"] == "eval compare" and saved["details"]["columns"]["tuned x0.8"]["adapter_weight"] == 0.8


def test_the_columns_of_a_comparison() -> None:
    tuned = ModelSpec("base-model", "run", adapter="run", adapter_weight=0.8)
    assert compare_columns(tuned, None) == {
        "base": ModelSpec("base-model", "run"),
        "tuned": ModelSpec("base-model", "run", adapter="run"),
        "tuned x0.8": tuned,
    }
    full = ModelSpec("runs/full", "runs/full")
    record = RunRecord(stage="train", config={}, base_model="base-model")
    assert compare_columns(full, record)["base"] == ModelSpec("base-model", "base-model")  # the base's tokenizer
    with pytest.raises(PcopilotError, match="nothing tuned to compare"):
        compare_columns(ModelSpec("base-model", "base-model"), None)


def test_compare_needs_a_model() -> None:
    with pytest.raises(ValueError, match="--model is required"):
        CompareConfig()
