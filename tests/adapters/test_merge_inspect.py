"""`pcopilot adapters merge` writes a standalone model whose logits are the base-plus-adapter logits; `inspect` reads
what an adapter is from its files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from personal_copilot.adapters import InspectConfig, MergeConfig, run_inspect, run_merge
from personal_copilot.cli import main
from personal_copilot.errors import PcopilotError
from tests.adapters.conftest import logits, make_adapter


@pytest.fixture(scope="module")
def merged(lora_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The training run's adapter merged by the CLI (its base read from the run's pcopilot_config.yaml)."""
    output = tmp_path_factory.mktemp("merged")
    assert main(["adapters", "merge", "--adapter", str(lora_run), "--output", str(output), "--overwrite", "true"]) == 0
    return output, json.loads((output / "report.json").read_text())


def test_merged_logits_equal_base_plus_adapter_and_differ_from_base(merged, lora_run, tiny_models, probe_ids) -> None:
    output, report = merged
    standalone = AutoModelForCausalLM.from_pretrained(output)
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]), lora_run)
    base = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])

    torch.testing.assert_close(logits(standalone, probe_ids), logits(with_adapter, probe_ids), atol=1e-5, rtol=1e-5)
    assert (logits(standalone, probe_ids) - logits(base, probe_ids)).abs().max() > 1e-2
    assert report["verified"] and report["merge_error"] < 1e-4 < report["adapter_effect"]


def test_merged_folder_is_a_plain_model_with_tokenizer_and_recipe(merged, lora_run, tiny_models) -> None:
    output, report = merged
    assert not (output / "adapter_config.json").exists()
    assert not any(".lora_" in name for name in load_file(output / "model.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(output)
    assert tokenizer.convert_tokens_to_ids("<fim_middle>") != tokenizer.unk_token_id
    saved = yaml.safe_load((output / "pcopilot_config.yaml").read_text())
    assert saved["stage"] == "adapters merge" and saved["base_model"] == str(tiny_models["llama"])
    assert saved["recipe"]["merged"]["path"] == str(lora_run) and saved["family"] == "starcoder"
    assert report["dtype"] == "fp32" and report["trained_on_4bit_base"] is False


def test_merge_in_bf16_saves_bf16_weights(lora_run: Path, tmp_path: Path) -> None:
    report = run_merge(MergeConfig(adapter=str(lora_run), output=tmp_path / "bf16", precision="bf16"))
    assert report.verified and report.dtype == "bf16"
    assert {t.dtype for t in load_file(tmp_path / "bf16" / "model.safetensors").values()} == {torch.bfloat16}
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "bf16").dtype == torch.bfloat16


@pytest.fixture(scope="module")
def qlora_run(lora_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The training run, recorded as a QLoRA run (its adapter was trained on the full-precision base, which changes
    nothing for what merge does with it)."""
    run = tmp_path_factory.mktemp("qlora") / "run"
    shutil.copytree(lora_run, run, ignore=shutil.ignore_patterns("checkpoint-*"))
    run_config = yaml.safe_load((run / "pcopilot_config.yaml").read_text())
    run_config["config"]["method"] = "qlora"
    run_config["trained_on_4bit_base"] = True
    (run / "pcopilot_config.yaml").write_text(yaml.safe_dump(run_config))
    return run


def test_a_qlora_adapter_is_merged_into_the_dequantized_base_with_a_warning(
    qlora_run, tiny_models, probe_ids, tmp_path: Path
) -> None:
    from personal_copilot.modeling import load_model

    report = run_merge(MergeConfig(adapter=str(qlora_run), output=tmp_path / "merged"))
    assert report.trained_on_4bit_base and report.base_weights == "dequantized" and report.verified
    (warning,) = report.warnings
    assert "QLoRA" in warning and "de-quantized" in warning and "evaluate the merged model" in warning

    dequantized = load_model(str(tiny_models["llama"]), precision="fp32", quantize_4bit=True).dequantize()
    as_trained = PeftModel.from_pretrained(dequantized, qlora_run)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert "quantization_config" not in json.loads((tmp_path / "merged" / "config.json").read_text())
    torch.testing.assert_close(logits(merged, probe_ids), logits(as_trained, probe_ids), atol=1e-5, rtol=1e-5)
    into_original = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]), qlora_run)
    assert (logits(merged, probe_ids) - logits(into_original, probe_ids)).abs().max() > 1e-3


def test_a_qlora_adapter_can_be_merged_into_the_original_base(qlora_run, merged, tmp_path: Path) -> None:
    report = run_merge(MergeConfig(adapter=str(qlora_run), output=tmp_path / "merged", qlora_base="original"))
    assert report.base_weights == "original" and "original fp32 weights" in report.warnings[0]
    plain, _ = merged
    ours, theirs = (load_file(p / "model.safetensors") for p in (tmp_path / "merged", plain))
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_merge_a_starcoder_architecture_adapter(tiny_models, probe_ids, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_models["bigcode"], tmp_path / "adapter", 7, r=4, target_modules=["c_attn", "c_fc"])
    report = run_merge(MergeConfig(adapter=str(adapter), output=tmp_path / "merged"))

    assert report.verified and report.base_model == str(tiny_models["bigcode"])  # from adapter_config.json
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_models["bigcode"]), adapter)
    standalone = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    torch.testing.assert_close(logits(standalone, probe_ids), logits(with_adapter, probe_ids), atol=1e-5, rtol=1e-5)


def test_inspect_describes_a_training_run(lora_run: Path, capsys) -> None:
    (info,) = run_inspect(InspectConfig(paths=[str(lora_run)])).adapters
    train = yaml.safe_load((lora_run / "pcopilot_config.yaml").read_text())["config"]
    assert (info.rank, info.alpha, info.scaling) == (train["lora"]["r"], train["lora"]["alpha"], 2.0)
    assert info.target_modules == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    assert info.adapted_modules == 14 and info.made_by == "pcopilot train (lora, fim, 8 steps)"
    assert info.parameters == sum(t.numel() for t in load_file(lora_run / "adapter_model.safetensors").values())
    assert info.family == "starcoder" and info.has_tokenizer and info.recipe is None

    assert main(["adapters", "inspect", str(lora_run), "--json", "true"]) == 0
    (printed,) = json.loads(capsys.readouterr().out)
    assert printed["rank"] == info.rank and printed["base_model"] == info.base_model


def test_inspect_shows_the_recipe_of_a_scaled_adapter(lora_run: Path, tmp_path: Path, capsys) -> None:
    assert (
        main(["adapters", "scale", "--adapter", str(lora_run), "--weight", "0.8", "--output", str(tmp_path / "s")])
        == 0
    )
    capsys.readouterr()
    assert main(["adapters", "inspect", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "pcopilot adapters scale" in out and "×0.8 of" in out


def test_inspect_of_a_model_folder_says_what_it_is(merged) -> None:
    output, _ = merged
    with pytest.raises(PcopilotError, match="holds a full model"):
        run_inspect(InspectConfig(paths=[str(output)]))
