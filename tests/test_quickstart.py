"""The README's first command at test scale: `pcopilot quickstart --profile test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from personal_copilot.cli import main
from personal_copilot.quickstart import RECIPES, BaseModel, build_base, project_source
from personal_copilot.quickstart.base import recipe_key


@pytest.fixture(scope="session")
def built_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BaseModel]:
    """The test recipe's base, built once into a session cache directory."""
    cache = tmp_path_factory.mktemp("base-cache")
    return cache, build_base(RECIPES["test"], cache)


def test_quickstart_runs_the_loop_on_given_sources(built_base, tmp_path: Path, capsys) -> None:
    from tests.corpus import write_repositories

    (source,) = write_repositories(tmp_path / "code")[:1]
    out, cache = tmp_path / "qs", built_base[0]
    argv = ["quickstart", "--profile", "test", "--sources", str(source), "--output", str(out)]
    assert main([*argv, "--base_cache_dir", str(cache), "--workers", "1"]) == 0

    report = json.loads((out / "report.json").read_text())
    assert report["collect"]["files_kept"] == 12
    assert report["train"]["steps"] == 4 and report["train"]["eval_loss"] > 0
    assert Path(report["base"]["model_dir"]).is_relative_to(cache)
    assert (out / "run" / "adapter_model.safetensors").is_file()
    assert yaml.safe_load((out / "pcopilot_config.yaml").read_text())["stage"] == "quickstart"
    printed = capsys.readouterr().out
    assert "pcopilot quickstart" in printed and f"pcopilot serve --model {out / 'run'}" in printed

    # The report's numbers are the evaluation's: base and tuned from the same compare runs.
    own = json.loads((out / "eval" / "own_code" / "report.json").read_text())
    general = json.loads((out / "eval" / "general_code" / "report.json").read_text())
    loss = next(m["values"] for m in own["metrics"] if m["name"] == "held-out loss")
    general_loss = next(m["values"] for m in general["metrics"] if m["name"] == "held-out loss")
    rows = {row["name"]: row for row in report["rows"]}
    assert (rows["own-code loss"]["base"], rows["own-code loss"]["tuned"]) == (loss["base"], loss["tuned"])
    assert rows["general-code loss"]["tuned"] == general_loss["tuned"]
    assert {"FIM exact match", "FIM edit similarity", "HumanEval pass@1"} <= set(rows)
    markdown = (out / "report.md").read_text()
    assert f"| own-code loss | own code | {loss['base']:.4f} | {loss['tuned']:.4f} |" in markdown
    page = (out / "report.html").read_text()
    assert f"{general_loss['tuned']:.4f}" in page and "run/loss.png" in page
    for image in ("run/loss.png", "eval/own_code/compare.png", "base_pretraining_loss.png"):
        assert (out / image).read_bytes()[:4] == b"\x89PNG"


def test_base_is_built_once_per_recipe(built_base) -> None:
    cache, first = built_base
    recipe = RECIPES["test"]
    again = build_base(recipe, cache)

    assert not first.reused and again.reused
    assert again.model_dir == first.model_dir == cache / recipe_key(recipe) / "run"
    assert (first.model_dir / "model.safetensors").is_file()
    assert first.general_split["eval_repos"] or first.general_split["eval_files"]


def test_default_source_is_this_project() -> None:
    assert (project_source() / "personal_copilot" / "collect" / "run.py").is_file()


def test_verdict_says_when_tuning_did_not_help() -> None:
    from personal_copilot.quickstart.report import Row, judge

    better = [
        Row("own-code loss", "own code", 2.0, 1.5, higher_is_better=False),
        Row("FIM edit similarity", "own code", 0.2, 0.3, higher_is_better=True),
        Row("general-code loss", "general code", 2.0, 2.05, higher_is_better=False),
    ]
    verdict = judge(better)
    assert verdict.own_code_better and verdict.general_code_kept

    worse = [*better[:1], Row("FIM edit similarity", "own code", 0.3, 0.3, True), better[2]]
    assert not judge(worse).own_code_better
    assert "FIM edit similarity: tuned 0.3000 vs base 0.3000, NOT better" in judge(worse).lines
    forgot = [*better[:2], Row("general-code loss", "general code", 2.0, 2.2, False)]
    assert not judge(forgot).general_code_kept
    assert any("forgetting" in line for line in judge(forgot).lines)
