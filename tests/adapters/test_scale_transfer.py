"""`pcopilot adapters scale` multiplies the update (as PEFT's one-adapter combination does, without the base), and
`transfer` moves an adapter only to a base whose module names and sizes fit it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from personal_copilot.adapters import ScaleConfig, TransferConfig, run_scale, run_transfer
from personal_copilot.cli import main
from personal_copilot.errors import PcopilotError
from tests.adapters.conftest import assert_updates_close, logits, lora_updates


def test_scale_by_half_halves_every_update(lora_run: Path, tmp_path: Path) -> None:
    report = run_scale(ScaleConfig(adapter=str(lora_run), weight=0.5, output=tmp_path / "half"))

    half = tmp_path / "half"
    assert_updates_close(lora_updates(half), {m: 0.5 * u for m, u in lora_updates(lora_run).items()}, atol=1e-7)
    assert report.tensors_scaled == len(lora_updates(lora_run))
    original, scaled = (json.loads((p / "adapter_config.json").read_text()) for p in (lora_run, half))
    assert (scaled["r"], scaled["lora_alpha"]) == (original["r"], original["lora_alpha"])
    saved = yaml.safe_load((half / "pcopilot_config.yaml").read_text())
    assert saved["recipe"]["weight"] == 0.5 and saved["recipe"]["input"]["path"] == str(lora_run)
    assert saved["base_model"] and saved["family"] == "starcoder"  # inherited from the training run
    assert (half / "tokenizer.json").is_file() and (half / "report.json").is_file()


def test_scale_gives_the_update_of_peft_one_adapter_combination(llama_adapters, tiny_models, tmp_path) -> None:
    adapter = llama_adapters["b"]
    run_scale(ScaleConfig(adapter=str(adapter), weight=0.8, output=tmp_path / "scaled"))

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]), adapter)
    model.add_weighted_adapter(["default"], [0.8], "peft", combination_type="linear")
    layers = model.base_model.model.model.layers
    ours = lora_updates(tmp_path / "scaled")
    for i, layer in enumerate(layers):
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            peft_update = getattr(layer.self_attn, name).get_delta_weight("peft").double()
            torch.testing.assert_close(ours[f"model.layers.{i}.self_attn.{name}"], peft_update, atol=1e-6, rtol=1e-5)


def test_scale_refuses_dora(llama_adapters, tmp_path: Path) -> None:
    with pytest.raises(PcopilotError, match="DoRA"):
        run_scale(ScaleConfig(adapter=str(llama_adapters["dora"]), weight=0.5, output=tmp_path / "x"))


def test_transfer_to_a_sibling_base_loads_there(llama_adapters, sibling_llama, tiny_models, probe_ids, tmp_path):
    adapter = llama_adapters["c"]
    report = run_transfer(TransferConfig(adapter=str(adapter), base=str(sibling_llama), output=tmp_path / "moved"))

    moved = tmp_path / "moved"
    assert report.modules_checked == 2 * 7 and report.from_base == str(tiny_models["llama"])
    assert json.loads((moved / "adapter_config.json").read_text())["base_model_name_or_path"] == str(sibling_llama)
    assert yaml.safe_load((moved / "pcopilot_config.yaml").read_text())["base_model"] == str(sibling_llama)
    original, copied = load_file(adapter / "adapter_model.safetensors"), load_file(moved / "adapter_model.safetensors")
    assert all(torch.equal(original[k], copied[k]) for k in original)
    on_sibling = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sibling_llama), moved)
    sibling = AutoModelForCausalLM.from_pretrained(sibling_llama)
    assert (logits(on_sibling, probe_ids) - logits(sibling, probe_ids)).abs().max() > 1e-2


def test_transfer_to_another_architecture_names_the_missing_modules(lora_run, tiny_models, tmp_path, capsys) -> None:
    argv = ["adapters", "transfer", "--adapter", str(lora_run), "--base", str(tiny_models["bigcode"])]
    assert main([*argv, "--output", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert f"does not fit base {tiny_models['bigcode']}" in error
    assert "model.layers.0.self_attn.q_proj: no such module in the base" in error
    assert not (tmp_path / "x").exists()


def test_transfer_to_other_sizes_names_the_sizes(llama_adapters, tiny_models, tmp_path: Path) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_models["llama"])
    config.intermediate_size = 192
    wider = tmp_path / "wider"
    AutoModelForCausalLM.from_config(config).save_pretrained(wider)
    with pytest.raises(PcopilotError, match=r"mlp.down_proj.lora_A.weight: size 128, the base layer needs 192"):
        run_transfer(TransferConfig(adapter=str(llama_adapters["c"]), base=str(wider), output=tmp_path / "x"))


def test_transfer_refuses_an_adapter_holding_whole_base_weights(chat_adapter, sibling_llama, tmp_path) -> None:
    """A chat run that grew the vocabulary saved its base's whole embedding matrices: on a sibling base they would
    replace the sibling's."""
    config = TransferConfig(adapter=str(chat_adapter), base=str(sibling_llama), output=tmp_path / "x")
    with pytest.raises(PcopilotError, match=r"holds whole weights of its base .*lm_head, model.embed_tokens"):
        run_transfer(config)


def test_scale_keeps_trained_token_rows(chat_adapter, tmp_path: Path) -> None:
    report = run_scale(ScaleConfig(adapter=str(chat_adapter), weight=0.5, output=tmp_path / "half"))
    original, scaled = (load_file(p / "adapter_model.safetensors") for p in (chat_adapter, tmp_path / "half"))
    assert all(torch.equal(original[k], scaled[k]) for k in original if "token_adapter" in k)
    assert_updates_close(lora_updates(tmp_path / "half"), {m: 0.5 * u for m, u in lora_updates(chat_adapter).items()})
    assert any("kept as trained" in w for w in report.warnings)
