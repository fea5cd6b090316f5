"""`pcopilot tokenizer`: a byte-level BPE tokenizer that `AutoTokenizer.from_pretrained` loads, with the family's
special tokens as single ids and exact round trips of any text."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from personal_copilot.cli import main


def test_trained_tokenizer_loads_with_auto_tokenizer(tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert tokenizer.is_fast
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.pad_token == "<fim_pad>"
    starcoder_ids = ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<repo_name>"]
    for expected_id, token in enumerate([*starcoder_ids, "<file_sep>"]):
        assert tokenizer(token, add_special_tokens=False).input_ids == [expected_id]
    text = 'def naïve(x):\n\treturn "日本語 🙂"  # from ..x import y\n'
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids, clean_up_tokenization_spaces=False) == text
    assert sorted(p.name for p in tokenizer_dir.iterdir()) == [
        "pcopilot_config.yaml",
        "report.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    report = json.loads((tokenizer_dir / "report.json").read_text())
    assert report["family"] == "starcoder" and report["special_tokens"]["<fim_suffix>"] == 3
    assert report["documents"] == 46 and 2.0 < report["chars_per_token"] < 6.0
    assert 256 < report["vocab_size"] <= 1024


def test_tokenizer_command_for_qwen(collected: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    output = tmp_path / "qwen_tok"
    args = ["tokenizer", "--data", str(collected), "--output", str(output), "--vocab_size", "600", "--family", "qwen"]
    assert main(args) == 0
    tokenizer = AutoTokenizer.from_pretrained(output)
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|fim_prefix|>", "<|file_sep|>"]) == [0, 1, 6]
    config = yaml.safe_load((output / "pcopilot_config.yaml").read_text())
    assert config["stage"] == "tokenizer" and config["config"]["family"] == "qwen"
