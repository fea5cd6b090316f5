"""A team with two repositories, one big and one small: training holds out files of each, trains on both, says so in
its summary, report and record; `pcopilot eval` scores exactly the files the run did not train on, in both; a run
that held nothing out (--eval_fraction 0) is evaluated on a split of eval's own, reported as trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personal_copilot import console
from personal_copilot.configs import read_run_record
from personal_copilot.dataset import ExampleStream, FimConfig, FimEncoder, list_shards
from personal_copilot.evaluate import CompareConfig, FimEvalConfig, FimSettings, resolve_held_out, run_compare, run_fim
from personal_copilot.modeling import load_tokenizer
from personal_copilot.train import OptimSettings, TrainConfig, run_train

REPOSITORIES = {"framework": 40, "client": 6}
"""Files per repository: a big one and a small one."""


def _module(repo: str, number: int) -> str:
    functions = "\n\n".join(
        f"def {repo}_{number}_{k}(value, count):\n    if value > {k}:\n        count += value * {k + 2}\n"
        f"    for index in range(count):\n        value = value + index\n    return value\n"
        for k in range(3 + number % 4)
    )
    return f'"""{repo} module {number}."""\n\nimport os\n\n\n{functions}'


@pytest.fixture(scope="module")
def two_repositories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset collected from a big and a small repository."""
    from personal_copilot.collect import CollectConfig, DedupConfig, run_collect

    root = tmp_path_factory.mktemp("two-repos")
    for repo, files in REPOSITORIES.items():
        for number in range(files):
            path = root / repo / ("tests" if number % 5 == 4 else "src") / f"module_{number}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_module(repo, number), encoding="utf-8")
    output = tmp_path_factory.mktemp("two-repos-data")
    config = CollectConfig(
        sources=[str(root / repo) for repo in REPOSITORIES],
        output=output,
        workers=1,
        redact_secrets=False,
        dedup=DedupConfig(near=False),
    )
    assert run_collect(config).files_kept == sum(REPOSITORIES.values())
    return output


def _train(model: Path, data: Path, output: Path, eval_fraction: float) -> TrainConfig:
    return TrainConfig(
        model=str(model),
        data=[str(data)],
        output=output,
        eval_fraction=eval_fraction,
        seq_len=64,
        max_steps=2,
        batch_size=2,
        gradient_accumulation_steps=1,
        eval_rows=2,
        eval_steps=0,
        save_steps=2,
        logging_steps=1,
        gradient_checkpointing=False,
        precision="fp32",
        optim=OptimSettings(learning_rate=1e-2, warmup_steps=0),
    )


def test_both_repositories_are_trained_on_and_evaluated(
    tiny_models: dict[str, Path], two_repositories: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    run = tmp_path / "run"
    report = run_train(_train(tiny_models["llama"], two_repositories, run, eval_fraction=0.2))

    (source,) = report.data
    assert source["split_by"] == "file" and source["eval_repos"] == []
    shares = {share["repo_id"]: share for share in source["repositories"]}
    assert set(shares) == set(REPOSITORIES)
    for repo, files in REPOSITORIES.items():
        share = shares[repo]
        assert (
            share["train_files"] >= 1
            and share["eval_files"] >= 1
            and share["train_files"] + share["eval_files"] == files
        )
        assert 0 < share["eval_bytes"] < share["eval_bytes"] + share["train_bytes"]
    assert json.loads((run / "report.json").read_text())["data"] == report.data
    (recorded,) = read_run_record(run).data_splits
    assert recorded["eval_files"] == source["eval_files"]

    # the rows the trainer iterates come from both repositories, and never from a held-out file
    held = {tuple(pair) for pair in source["eval_files"]}
    encoder = FimEncoder(load_tokenizer(str(run)))
    stream = ExampleStream(
        list_shards(two_repositories),
        encoder,
        FimConfig(),
        seq_len=64,
        split=resolve_held_out(None, read_run_record(run), 0.1, 0).split,
    )
    trained = {(d.repo_id, d.file_path) for d in stream.documents()}
    assert {repo for repo, _ in trained} == set(REPOSITORIES) and trained.isdisjoint(held)

    monkeypatch.setattr(console.stdout, "width", 250)
    capsys.readouterr()
    report.print()
    printed = capsys.readouterr().out
    assert f"by file within each repository: {len(held)} of {sum(REPOSITORIES.values())} files" in printed
    assert f"{shares['framework']['eval_files']} of 40 files held out" in printed
    assert f"{shares['client']['eval_files']} of 6 files held out" in printed

    fim = run_fim(
        FimEvalConfig(
            model=str(run),
            fim=FimSettings(num_examples=4, max_new_tokens=2),
            precision="fp32",
            output=tmp_path / "fim",
        )
    )
    assert set(fim.by_repository) == set(REPOSITORIES)  # both repositories evaluated
    holes = [json.loads(line) for line in (tmp_path / "fim" / "holes.jsonl").read_text().splitlines()]
    assert {(h["repo_id"], h["file_path"]) for h in holes} <= held  # only files the run did not train on
    assert fim.split.startswith("held out by the training run (by file within each repository")


def test_a_run_that_held_nothing_out_is_evaluated_on_a_split_of_evals_own(
    tiny_models: dict[str, Path], two_repositories: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    report = run_train(_train(tiny_models["llama"], two_repositories, run, eval_fraction=0.0))
    assert report.eval_loss is None and report.data[0]["eval_documents"] == 0

    record = read_run_record(run)
    small, large = (resolve_held_out(None, record, fraction, 0) for fraction in (0.1, 0.5))
    assert small.split.eval_documents < large.split.eval_documents  # --eval_fraction takes effect
    assert large.source.startswith(f"not held out from training: the run trained on every file of {two_repositories}")

    out = tmp_path / "compare"
    settings = FimSettings(num_examples=2, max_new_tokens=2)
    compare = run_compare(
        CompareConfig(
            model=str(run), benchmarks=["fim"], fim=settings, eval_fraction=0.5, precision="fp32", output=out
        )
    )
    assert compare.reports["tuned"]["fim"].split == large.source
    assert "not held out from training" in (out / "report.md").read_text()
