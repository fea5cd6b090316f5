"""The README's first command at test scale: `pcopilot quickstart --profile test` on a tiny default base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from personal_copilot.cli import main
from personal_copilot.collect import language_of
from personal_copilot.quickstart import project_source
from personal_copilot.quickstart.report import Row, judge
from personal_copilot.train import TrainInterrupted


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A team's project of two repositories."""
    from tests.corpus import write_repositories

    return write_repositories(tmp_path_factory.mktemp("code"))[:2]


@pytest.mark.slow
def test_quickstart_runs_the_loop_then_reuses_it(
    test_base: Path, sources: list[Path], tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "qs"
    listed = f"[{', '.join(map(str, sources))}]"
    argv = ["quickstart", "--profile", "test", "--sources", listed, "--output", str(out), "--workers", "1"]
    assert main(argv) == 0

    report = json.loads((out / "report.json").read_text())
    assert report["collect"]["files_kept"] == 24
    own_code = report["train"]["data"][0]["repositories"]
    assert len(own_code) == 2  # both repositories are trained on and both have held-out files to evaluate
    assert all(share["train_files"] > 0 and share["eval_files"] > 0 for share in own_code)
    assert report["train"]["steps"] == 4 and report["train"]["eval_loss"] > 0
    assert report["base"] == str(test_base) and report["reused"] == []
    assert (out / "run" / "adapter_model.safetensors").is_file()
    assert yaml.safe_load((out / "pcopilot_config.yaml").read_text())["stage"] == "quickstart"
    printed = capsys.readouterr().out
    assert "pcopilot quickstart" in printed and f"pcopilot serve --model {out / 'run'} --name quickstart" in printed

    # The report's numbers are the evaluation's: base and tuned from the same compare run.
    own = json.loads((out / "eval" / "own_code" / "report.json").read_text())
    loss = next(m["values"] for m in own["metrics"] if m["name"] == "held-out loss")
    rows = {row["name"]: row for row in report["rows"]}
    assert (rows["own-code loss"]["base"], rows["own-code loss"]["tuned"]) == (loss["base"], loss["tuned"])
    general = rows["general-code bits per byte"]
    assert 0 < general["base"] < 16 and 0 < general["tuned"] < 16
    assert {"FIM exact match", "FIM edit similarity", "HumanEval pass@1"} <= set(rows)
    markdown = (out / "report.md").read_text()
    assert f"| own-code loss | own code | {loss['base']:.4f} | {loss['tuned']:.4f} |" in markdown
    # Held-out holes side by side: the truth, the base's middle and the tuned model's, from the holes files.
    base_holes = [json.loads(line) for line in (out / "eval/own_code/base/holes.jsonl").read_text().splitlines()]
    assert "## Held-out holes, side by side" in markdown and f"`{base_holes[0]['repo_id']}/" in markdown
    assert "| truth |" in markdown and "| base |" in markdown and "| tuned |" in markdown
    fence = language_of(base_holes[0]["file_path"]).lower()  # highlighted as its own language, not always Python
    assert f"```{fence}\n{base_holes[0]['before']}█{base_holes[0]['after']}\n```" in markdown
    page = (out / "report.html").read_text()
    assert "side by side" in page and "run/loss.png" in page
    for image in ("run/loss.png", "eval/own_code/compare.png", "base_pretraining_loss.png"):
        assert (out / image).read_bytes()[:4] == b"\x89PNG"

    # A second run with nothing changed reuses the fine-tune and the evaluation, and reports the same rows.
    assert main(argv) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["reused"] == ["fine-tune", "evaluation"] and again["rows"] == report["rows"]

    # Killed after a checkpoint but before the end: the next run resumes from the checkpoint instead of starting over.
    (out / "run" / "report.json").unlink()
    (out / "run" / "adapter_model.safetensors").unlink()
    assert main(argv) == 0
    resumed = json.loads((out / "report.json").read_text())
    assert resumed["train"]["resumed_from"] == "checkpoint-4" and "fine-tune" not in resumed["reused"]

    # The run folder is claimed for its inputs before training starts, so a kill in the first fine-tune is resumed.
    state = out / ".pcopilot" / "quickstart.json"
    state.write_text("{}")

    claimed = []

    def killed(config):
        claimed.append(json.loads(state.read_text()).get("tune"))
        raise TrainInterrupted(2, 4, None, "pcopilot train …")

    monkeypatch.setattr("personal_copilot.quickstart.run.run_train", killed)
    capsys.readouterr()
    assert main(argv) == 130
    assert claimed and claimed[0]
    message = capsys.readouterr().err
    assert "the fine-tune stopped at step 2 of 4; run the same pcopilot quickstart again to resume it" in message
    assert "pcopilot train" not in message  # the quickstart resumes on its own: no train command to copy


def test_default_source_is_this_project() -> None:
    assert (project_source() / "personal_copilot" / "collect" / "run.py").is_file()


def _rows(own_loss: float, exact: float, general: float, parses: float = 0.5) -> list[Row]:
    return [
        Row("own-code loss", "own code", 2.0, own_loss, higher_is_better=False),
        Row("FIM exact match", "own code", 0.2, exact, higher_is_better=True),
        Row("FIM Python parses", "own code", 0.5, parses, higher_is_better=True),
        Row("general-code bits per byte", "general code", 1.0, general, higher_is_better=False),
    ]


def test_verdict_needs_better_loss_and_exact_match() -> None:
    verdict = judge(_rows(1.5, 0.3, 1.02))
    assert verdict.own_code_better and verdict.general_code_kept and not verdict.regressions
    assert verdict.headline == "tuned beats base on your code and keeps general code"

    same_exact = judge(_rows(1.5, 0.2, 1.02))
    assert not same_exact.own_code_better
    assert "FIM exact match: tuned 0.2000 vs base 0.2000, NOT better" in same_exact.lines


def test_verdict_names_forgetting_and_regressions() -> None:
    forgot = judge(_rows(1.5, 0.3, 1.2))
    assert not forgot.general_code_kept and "FORGETS" in forgot.headline
    assert any("forgetting" in line for line in forgot.lines)

    regressed = judge(_rows(1.5, 0.3, 1.0, parses=0.2))
    assert regressed.own_code_better and regressed.regressions == ["FIM Python parses"]
    assert "with regressions: FIM Python parses" in regressed.headline
    assert "regression: FIM Python parses went from 0.5000 to 0.2000" in regressed.lines
