"""Which llama.cpp pre-tokenizer a tokenizer.json maps to, and the tokenization check on a converted GGUF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personal_copilot.errors import PcopilotError
from personal_copilot.export import check_tokenizer_parity, llama_cpp_pre_tokenizer
from personal_copilot.export.local import open_model
from personal_copilot.export.pretokenizer import PROBE_TEXTS

BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
DIGITS = {"type": "Digits", "individual_digits": True}
STARCODER = {"type": "Sequence", "pretokenizers": [DIGITS, BYTE_LEVEL]}


@pytest.mark.parametrize(
    ("tokenizer_json", "expected"),
    [
        ({"normalizer": None, "pre_tokenizer": BYTE_LEVEL}, "gpt-2"),
        ({"normalizer": None, "pre_tokenizer": STARCODER}, "starcoder"),
        ({"normalizer": None, "pre_tokenizer": BYTE_LEVEL | {"add_prefix_space": True}}, None),
        ({"normalizer": None, "pre_tokenizer": BYTE_LEVEL | {"use_regex": False}}, None),
        ({"normalizer": {"type": "NFC"}, "pre_tokenizer": BYTE_LEVEL}, None),
        ({"normalizer": None, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [BYTE_LEVEL, DIGITS]}}, None),
        ({"normalizer": None, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}}, None),
        ({"normalizer": None, "pre_tokenizer": None}, None),
    ],
)
def test_maps_only_the_splitting_llama_cpp_implements(tokenizer_json: dict, expected: str | None) -> None:
    assert llama_cpp_pre_tokenizer(tokenizer_json) == expected


def test_pcopilot_tokenizers_map_to_gpt2(tokenizer_dir: Path) -> None:
    assert llama_cpp_pre_tokenizer(json.loads((tokenizer_dir / "tokenizer.json").read_text())) == "gpt-2"


@pytest.mark.slow
def test_parity_check_catches_a_tokenizer_that_splits_digits(gguf_f16, lora_run: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer_json = json.loads((lora_run / "tokenizer.json").read_text())
    tokenizer_json["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [DIGITS, tokenizer_json["pre_tokenizer"]]}
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_text((lora_run / name).read_text())
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer_json))
    same = AutoTokenizer.from_pretrained(lora_run)
    splits_digits = AutoTokenizer.from_pretrained(tmp_path)

    llm = open_model(Path(gguf_f16.output), 128)
    try:
        assert check_tokenizer_parity(llm, same, PROBE_TEXTS) == len(PROBE_TEXTS)
        with pytest.raises(PcopilotError, match=r"tokenizes .*333.* differently from the HF tokenizer"):
            check_tokenizer_parity(llm, splits_digits, PROBE_TEXTS)
    finally:
        llm.close()
