"""`pcopilot dataset`: the JSON lines a user looks at before training, the files beside them, and flag handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from personal_copilot.cli import main, parse_config
from personal_copilot.dataset import ExampleStream, FimConfig, list_shards, read_document_sizes, split_documents


def _read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_dataset_writes_examples_config_and_report(
    collected: Path, tokenizer_dir: Path, encoder, tmp_path: Path
) -> None:
    output = tmp_path / "peek" / "examples.jsonl"
    flags = ["--seq_len", "128", "--seed", "3", "--fim.rate", "1", "--fim.level", "token", "--fim.span", "line"]
    args = ["dataset", "--data", str(collected), "--tokenizer", str(tokenizer_dir), "--output", str(output)]
    assert main([*args, "--num_examples", "5", *flags]) == 0

    lines = _read_lines(output)
    assert len(lines) == 5
    split = split_documents(read_document_sizes(list_shards(collected)), 0.1, seed=3)
    fim = FimConfig(rate=1.0, level="token", span="line")
    stream = ExampleStream(list_shards(collected), encoder, fim, seq_len=128, seed=3, split=split)
    for line, row in zip(lines, stream, strict=False):
        assert set(line) == {"text", "input_ids", "sources"}
        assert line["input_ids"] == row.input_ids and len(line["input_ids"]) == 128
        assert line["text"] == encoder.decode(line["input_ids"])
        sources = line["sources"]
        assert all(s["fim"] in ("psm", "spm") and split.side(s["repo_id"], s["file_path"]) == "train" for s in sources)
    assert lines[0]["text"].startswith("<fim_prefix>")
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "examples.jsonl",
        "examples.pcopilot_config.yaml",
        "examples.report.json",
    ]
    config = yaml.safe_load((output.parent / "examples.pcopilot_config.yaml").read_text())
    assert config["stage"] == "dataset" and config["config"]["fim"]["span"] == "line"
    report = json.loads((output.parent / "examples.report.json").read_text())
    assert report["examples"] == 5 and report["tokens"] + report["padding_tokens"] == 5 * 128
    assert report["family"] == "starcoder" and report["plain"] == 0 and report["fim_psm"] + report["fim_spm"] >= 5
    assert report["split"]["by"] == "file" and report["split"]["eval_files"] == [list(f) for f in split.eval_files]
    assert [share["repo_id"] for share in report["split"]["repositories"]] == ["alpha", "beta", "delta", "gamma"]


def test_unpacked_eval_side(collected: Path, tokenizer_dir: Path, encoder, tmp_path: Path) -> None:
    output = tmp_path / "eval.jsonl"
    args = ["dataset", "--data", str(collected), "--tokenizer", str(tokenizer_dir), "--output", str(output)]
    flags = ["--packing", "false", "--split", "eval", "--eval_fraction", "0.25", "--num_examples", "0"]
    assert main([*args, *flags, "--split_by", "repository"]) == 0
    lines = _read_lines(output)
    split = split_documents(read_document_sizes(list_shards(collected)), 0.25, seed=0, by="repository")
    assert len(lines) == split.eval_documents  # every held-out document, one per line (all fit in 2048 tokens)
    assert all(len(line["sources"]) == 1 and line["input_ids"][-1] == encoder.eos_id for line in lines)
    assert {line["sources"][0]["repo_id"] for line in lines} == set(split.eval_repos)


def test_tokenizer_without_sentinels_fails_with_a_message(
    collected: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Qwen-family tokenizer asked for StarCoder sentinels: exit status 2 and an error naming what is missing."""
    qwen = tmp_path / "qwen_tok"
    assert main(["tokenizer", "--data", str(collected), "--output", str(qwen), "--family", "qwen"]) == 0
    capsys.readouterr()
    args = ["dataset", "--data", str(collected), "--tokenizer", str(qwen), "--output", str(tmp_path / "x.jsonl")]
    assert main([*args, "--family", "starcoder"]) == 2
    error = capsys.readouterr().err
    assert "lacks the FIM sentinels of model family 'starcoder'" in error and "<fim_prefix>" in error
    assert not (tmp_path / "x.jsonl").exists()
    assert main([*args, "--family", "starcoder", "--fim.rate", "0", "--num_examples", "1"]) == 0


def test_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for stage, flags in (
        ("dataset", ["--fim.rate", "--fim.spm_rate", "--fim.level", "--fim.span", "--seq_len", "--packing"]),
        ("tokenizer", ["--data", "--output", "--vocab_size", "--family"]),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([stage, "--help"])
        assert exit_info.value.code == 0
        help_text = capsys.readouterr().out
        assert all(flag in help_text for flag in flags)


def test_bad_values_name_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    for flags, message in (
        (["--fim.rate", "1.5"], "--fim.rate must be in [0, 1]"),
        (["--seq_len", "8"], "--seq_len must be at least 16"),
        (["--fim.level", "word"], "fim.level"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            parse_config("dataset", ["--tokenizer", "tok", *flags])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_yaml_gives_defaults_flags_override_unknown_keys_fail(tmp_path: Path) -> None:
    settings = tmp_path / "dataset.yaml"
    settings.write_text("tokenizer: tok\nseq_len: 512\nfim:\n  rate: 0.2\n  level: token\n")
    config = parse_config("dataset", ["--config", str(settings), "--fim.spm_rate", "0.9", "--seq_len", "256"])
    assert (config.seq_len, config.fim.rate, config.fim.level, config.fim.spm_rate) == (256, 0.2, "token", 0.9)
    settings.write_text("tokenizer: tok\nfim:\n  ratio: 0.2\n")
    with pytest.raises(SystemExit):
        parse_config("dataset", ["--config", str(settings)])
