"""What `--model` and `--adapter` point at: a training run, an adapter folder, a model folder or a hub id."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from personal_copilot.errors import PcopilotError
from personal_copilot.export import GgufConfig, resolve_model_source, run_export_gguf


def test_a_lora_run_brings_its_base_adapter_tokenizer_and_family(lora_run: Path, tiny_models) -> None:
    source = resolve_model_source(str(lora_run))

    assert source.base == str(tiny_models["llama"]) and source.adapter == lora_run
    assert source.tokenizer == str(lora_run) and source.family == "starcoder"


def test_a_full_fine_tuning_run_is_the_model_itself(tmp_path: Path) -> None:
    run = tmp_path / "full-run"
    run.mkdir()
    (run / "pcopilot_config.yaml").write_text(yaml.safe_dump({"stage": "train", "base_model": "org/base"}))

    source = resolve_model_source(str(run))

    assert (source.base, source.adapter, source.tokenizer) == (str(run), None, str(run))


def test_an_adapter_folder_names_its_base(lora_run: Path, tiny_models, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    shutil.copy(lora_run / "adapter_config.json", adapter)

    source = resolve_model_source(str(adapter))

    assert source.base == json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert source.adapter == adapter and source.tokenizer == source.base  # no tokenizer beside the adapter
    assert source.family is None


def test_a_model_with_an_explicit_adapter(lora_run: Path, tiny_models) -> None:
    source = resolve_model_source(str(tiny_models["llama"]), adapter=lora_run)

    assert (source.base, source.adapter, source.tokenizer) == (str(tiny_models["llama"]), lora_run, str(lora_run))
    assert resolve_model_source("bigcode/starcoderbase-1b").base == "bigcode/starcoderbase-1b"


def test_adapter_mistakes_are_user_errors(lora_run: Path, tiny_models, tmp_path: Path) -> None:
    with pytest.raises(PcopilotError, match="already brings the adapter"):
        resolve_model_source(str(lora_run), adapter=lora_run)
    with pytest.raises(PcopilotError, match="is not a LoRA adapter directory"):
        resolve_model_source(str(tiny_models["llama"]), adapter=tmp_path)


def test_gpt_bigcode_with_a_feed_forward_llama_cpp_cannot_load_fails_before_converting(
    tiny_models, tmp_path: Path
) -> None:
    with pytest.raises(PcopilotError, match=r"as 4 x n_embd \(256\), but this model has n_inner 128"):
        run_export_gguf(GgufConfig(model=str(tiny_models["bigcode"]), output=tmp_path / "bigcode.gguf"))
    assert not any(tmp_path.iterdir())


def test_output_must_be_a_gguf_file() -> None:
    with pytest.raises(ValueError, match=r"--output must name a \.gguf file"):
        GgufConfig(model="m", output=Path("model.bin"))
