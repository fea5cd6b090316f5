"""Held-out loss (the trainer's eval rows, the trainer's number) and the models `--model / --adapter /
--adapter_weight` name: run directories resolved, the adapter scaled exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from personal_copilot.configs import read_run_record
from personal_copilot.dataset import FimEncoder
from personal_copilot.errors import PcopilotError
from personal_copilot.evaluate import LossConfig, ModelOptions, ModelSpec, load_for_eval, resolve_model, run_loss
from personal_copilot.evaluate.benchmarks import RowSettings
from personal_copilot.evaluate.config import LossSettings
from personal_copilot.evaluate.heldout import resolve_held_out
from personal_copilot.evaluate.loss import held_out_rows, score_rows


def test_loss_on_a_run_reproduces_its_trainers_eval_loss(lora_run: Path, tmp_path: Path) -> None:
    trained = read_run_record(lora_run).config
    config = LossConfig(
        model=str(lora_run), loss=LossSettings(max_rows=trained["eval_rows"]), batch_size=2, output=tmp_path / "loss"
    )
    report = run_loss(config)

    trainer_eval_loss = json.loads((lora_run / "report.json").read_text())["eval_loss"]
    # the same rows; the trainer averages per batch, we per token
    assert report.scores.loss == pytest.approx(trainer_eval_loss, rel=2e-3)
    assert (report.seq_len, report.fim_rate) == (trained["seq_len"], trained["fim"]["rate"])
    scores = report.scores
    assert scores.tokens == scores.plain_tokens + scores.fim_tokens and scores.plain_tokens and scores.fim_tokens
    weighted = (scores.plain_loss * scores.plain_tokens + scores.fim_loss * scores.fim_tokens) / scores.tokens
    assert weighted == pytest.approx(scores.loss)
    assert scores.perplexity == pytest.approx(torch.tensor(scores.loss).exp().item())
    assert json.loads((tmp_path / "loss" / "report.json").read_text())["scores"]["rows"] == scores.rows


def test_row_loss_equals_the_models_own_loss(lora_run: Path) -> None:
    spec, run_config = resolve_model(ModelOptions(model=str(lora_run)))
    loaded = load_for_eval(spec, "fp32")
    held_out = resolve_held_out(None, run_config, 0.1, 0)
    settings = RowSettings.of(LossSettings(fim_rate=0.0), run_config, 0, loaded.max_positions)
    encoder = FimEncoder(loaded.tokenizer, loaded.family)
    rows = held_out_rows(held_out, encoder, settings.fim, seq_len=64, seed=0, repo_context=False, max_rows=1)

    scores = score_rows(loaded.model, rows, batch_size=1)
    (row,) = rows
    with torch.inference_mode():
        expected = loaded.model(
            input_ids=torch.tensor([row.input_ids]),
            position_ids=torch.tensor([row.position_ids]),
            labels=torch.tensor([row.labels]),
        ).loss.item()
    assert scores.loss == pytest.approx(expected, rel=1e-5)
    assert scores.fim_tokens == 0 and scores.fim_loss is None  # --fim_rate 0: plain documents only


def test_a_run_directory_names_its_base_adapter_tokenizer_and_family(lora_run: Path, tiny_models: dict) -> None:
    base = str(tiny_models["llama"])
    from_run, run_config = resolve_model(ModelOptions(model=str(lora_run)))
    assert from_run == ModelSpec(base=base, tokenizer=str(lora_run), adapter=str(lora_run), family="starcoder")
    assert run_config.stage == "train" and run_config.eval_rows.seq_len == 64

    spelled_out, _ = resolve_model(ModelOptions(model=base, adapter=str(lora_run), adapter_weight=0.8))
    assert spelled_out == ModelSpec(base, str(lora_run), str(lora_run), 0.8, "starcoder")
    adapter_only, _ = resolve_model(ModelOptions(adapter=str(lora_run)))
    assert adapter_only.base == base
    with pytest.raises(PcopilotError, match="give --adapter only with a base model"):
        resolve_model(ModelOptions(model=str(lora_run), adapter=str(lora_run)))
    with pytest.raises(PcopilotError, match="--adapter_weight scales a LoRA adapter"):
        resolve_model(ModelOptions(model=base, adapter_weight=0.8))


def test_a_plain_adapter_directory_names_its_base(lora_run: Path, tiny_models: dict, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (adapter / name).write_bytes((lora_run / name).read_bytes())
    spec, run_config = resolve_model(ModelOptions(adapter=str(adapter)))
    assert run_config is None
    assert spec.base == json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert spec.tokenizer == spec.base  # no tokenizer beside the adapter


def lora_deltas(model) -> dict[str, torch.Tensor]:
    """The weight update of every LoRA layer (B A times its scaling) of the active adapter."""
    return {
        name: module.get_delta_weight(module.active_adapters[0]).detach().clone()
        for name, module in model.named_modules()
        if hasattr(module, "get_delta_weight") and module.active_adapters[0] in module.lora_A
    }


def test_adapter_weight_scales_the_update_exactly(lora_run: Path) -> None:
    spec, _ = resolve_model(ModelOptions(model=str(lora_run)))
    full = load_for_eval(spec, "fp32")
    scaled = load_for_eval(ModelSpec(spec.base, spec.tokenizer, spec.adapter, 0.8, spec.family), "fp32")
    off = load_for_eval(ModelSpec(spec.base, spec.tokenizer, spec.adapter, 0.0, spec.family), "fp32")
    base = load_for_eval(spec.without_adapter(), "fp32")

    deltas, scaled_deltas = lora_deltas(full.model), lora_deltas(scaled.model)
    assert deltas and deltas.keys() == scaled_deltas.keys()
    for name, delta in deltas.items():
        assert delta.abs().max() > 0
        torch.testing.assert_close(scaled_deltas[name], 0.8 * delta, rtol=1e-5, atol=1e-7)
    ids = torch.tensor([full.tokenizer("def total(values):\n    return")["input_ids"]])
    with torch.inference_mode():
        logits = {name: m.model(ids).logits for name, m in (("full", full), ("off", off), ("base", base))}
    torch.testing.assert_close(logits["off"], logits["base"])
    assert not torch.allclose(logits["full"], logits["base"])
