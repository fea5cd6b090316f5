"""`pcopilot train` on tiny local models: what changes, what is written, losses, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from personal_copilot.errors import PcopilotError
from personal_copilot.train import OptimSettings, TrainConfig, run_train
from personal_copilot.train import run as train_run
from personal_copilot.train.metrics import read_metrics

QUICK = {
    "seq_len": 64,
    "batch_size": 2,
    "gradient_accumulation_steps": 1,
    "logging_steps": 1,
    "eval_rows": 4,
    "gradient_checkpointing": False,
    "precision": "fp32",
}


def config(model: str | Path, data: Path, output: Path, **overrides) -> TrainConfig:
    values = {**QUICK, "max_steps": 4, "eval_steps": 2, "save_steps": 2} | overrides
    return TrainConfig(model=str(model), data=[str(data)], output=output, **values)


@pytest.fixture
def capture_lora(monkeypatch) -> dict:
    """Records the PEFT model and a copy of every parameter right after LoRA is applied."""
    captured: dict = {}
    original = train_run._apply_lora

    def apply_and_capture(*args, **kwargs):
        model = original(*args, **kwargs)
        captured["model"] = model
        captured["initial"] = {n: p.detach().clone() for n, p in model.named_parameters()}
        return model

    monkeypatch.setattr(train_run, "_apply_lora", apply_and_capture)
    return captured


@pytest.mark.parametrize("architecture", ["llama", "bigcode"])
def test_lora_changes_every_adapter_weight_and_no_base_weight(
    architecture: str, tiny_models, collected: Path, tmp_path: Path, capture_lora: dict
) -> None:
    report = run_train(
        config(tiny_models[architecture], collected, tmp_path / "run", optim=OptimSettings(learning_rate=1e-2))
    )

    final = dict(capture_lora["model"].named_parameters())
    lora = [n for n in final if "lora_" in n]
    assert lora and all(not torch.equal(final[n], capture_lora["initial"][n]) for n in lora)
    assert all(torch.equal(final[n], capture_lora["initial"][n]) for n in final if "lora_" not in n)
    saved = load_file(tmp_path / "run" / "adapter_model.safetensors")
    assert len(saved) == len(lora)
    assert report.trainable_parameters == sum(final[n].numel() for n in lora)
    expected_targets = {"llama": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}
    expected_targets["bigcode"] = {"c_attn", "c_proj", "c_fc"}
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == expected_targets[architecture]
    assert (adapter["r"], adapter["lora_alpha"]) == (32, 64)


def test_output_files(tiny_models, collected: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    report = run_train(config(tiny_models["llama"], collected, out, save_total_limit=None))

    assert sorted(p.name for p in out.iterdir()) == [
        ".pcopilot",
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "checkpoint-2",
        "checkpoint-4",
        "learning_rate.png",
        "loss.png",
        "metrics.jsonl",
        "pcopilot_config.yaml",
        "report.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "training_args.bin",
    ]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4]
    assert [m["step"] for m in metrics if "eval_loss" in m] == [2, 4]
    assert all(m["tokens_per_second"] > 0 and "learning_rate" in m for m in metrics if "loss" in m)
    saved = json.loads((out / "report.json").read_text())
    assert saved["steps"] == 4 and saved["tokens_seen"] == 4 * 2 * 64
    assert saved["eval_loss"] == pytest.approx(metrics[-1]["eval_loss"])
    assert saved["family"] == "starcoder" and report.world_size == 1
    for png in ("loss.png", "learning_rate.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_full_fine_tuning_loss_goes_down(tiny_models, collected: Path, tmp_path: Path) -> None:
    out = tmp_path / "full"
    report = run_train(
        config(
            tiny_models["llama"],
            collected,
            out,
            method="full",
            max_steps=30,
            eval_steps=15,
            save_steps=30,
            optim=OptimSettings(learning_rate=3e-3, warmup_steps=0, lr_scheduler_type="constant"),
        )
    )

    losses = [
        json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line
    ]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert report.trainable_parameters == report.total_parameters


def test_scratch_model_keeps_its_base_for_the_adapter(collected: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "scratch"
    report = run_train(config("scratch:tiny", collected, out, max_steps=2, scratch_vocab_size=600))

    base = AutoModelForCausalLM.from_pretrained(out / "base")
    assert report.model == str((out / "base").resolve())
    assert base.config.vocab_size == len(AutoTokenizer.from_pretrained(out / "base")) <= 600
    tuned = PeftModel.from_pretrained(base, out)
    assert tuned.peft_config["default"].base_model_name_or_path == str((out / "base").resolve())


def test_existing_checkpoints_need_resume(tiny_models, collected: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(PcopilotError, match="holds no checkpoint; use --resume auto"):
        run_train(config(tiny_models["llama"], collected, out, max_steps=2, resume=True))
    first = run_train(config(tiny_models["llama"], collected, out, max_steps=2, resume="auto", logging_steps=10))
    assert first.resumed_from is None and first.train_loss is not None  # a run shorter than --logging_steps
    assert [m["step"] for m in read_metrics(out / "metrics.jsonl") if "loss" in m] == [2]
    with pytest.raises(PcopilotError, match="--resume true"):
        run_train(config(tiny_models["llama"], collected, out, max_steps=4))
    report = run_train(config(tiny_models["llama"], collected, out, max_steps=4, resume="auto"))
    assert report.resumed_from == "checkpoint-2" and report.steps == 4


def test_flash_attention_on_cpu_is_a_clear_error(tiny_models, collected: Path, tmp_path: Path) -> None:
    with pytest.raises(PcopilotError, match="flash_attention_2 needs a CUDA GPU"):
        run_train(config(tiny_models["llama"], collected, tmp_path / "r", attn_implementation="flash_attention_2"))


def test_tokenizer_without_sentinels_is_refused(tiny_models, collected: Path, tmp_path: Path) -> None:
    with pytest.raises(PcopilotError, match="qwen"):
        run_train(config(tiny_models["llama"], collected, tmp_path / "r", family="qwen"))


def test_qlora_trains_on_cpu(tiny_models, collected: Path, tmp_path: Path) -> None:
    report = run_train(config(tiny_models["llama"], collected, tmp_path / "q", method="qlora", max_steps=2))

    assert report.steps == 2 and report.eval_loss is not None
    adapter = json.loads((tmp_path / "q" / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA"
    saved = yaml.safe_load((tmp_path / "q" / "pcopilot_config.yaml").read_text())
    assert saved["config"]["method"] == "qlora"


def test_qlora_without_bitsandbytes_fails_before_any_work(tiny_models, collected, tmp_path: Path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # what an install without the qlora extra looks like
    with pytest.raises(PcopilotError, match=r"pip install 'personal-copilot\[qlora\]'"):
        run_train(config(tiny_models["llama"], collected, tmp_path / "q", method="qlora"))
    assert not (tmp_path / "q").exists()


def test_shared_lora_run_fixture_is_a_usable_adapter(lora_run: Path) -> None:
    import yaml
    from peft import AutoPeftModelForCausalLM

    saved = yaml.safe_load((lora_run / "pcopilot_config.yaml").read_text())
    assert saved["stage"] == "train" and saved["family"] == "starcoder"
    assert saved["base_model"] == saved["config"]["model"]
    model = AutoPeftModelForCausalLM.from_pretrained(lora_run)
    assert any(float(p.abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_fewer_eval_rows_than_a_batch_still_give_an_eval_loss(tiny_models, collected: Path, tmp_path: Path) -> None:
    report = run_train(config(tiny_models["llama"], collected, tmp_path / "r", max_steps=1, batch_size=8, eval_rows=3))
    assert report.eval_loss is not None and report.eval_loss > 0


def test_push_to_hub_uploads_the_run_without_checkpoints(
    tiny_models, collected: Path, tmp_path: Path, monkeypatch
) -> None:
    import huggingface_hub

    calls: list[tuple[str, dict]] = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "run"
    report = run_train(config(tiny_models["llama"], collected, out, max_steps=2, push_to_hub="team/copilot"))

    assert calls[0] == ("create_repo", {"repo_id": "team/copilot", "exist_ok": True, "private": True})
    upload = calls[1][1]
    assert upload["folder_path"] == str(out) and "checkpoint-*" in upload["ignore_patterns"]
    assert report.pushed_to == "https://huggingface.co/team/copilot"
    assert json.loads((out / "report.json").read_text())["pushed_to"] == report.pushed_to


def test_dataloader_workers_each_read_their_own_rows(tiny_models, collected: Path, tmp_path: Path) -> None:
    """The training dataset `run_train` hands the Trainer, read by a DataLoader with two workers: each worker yields
    its own partition of the documents, so no row comes twice (the old wrapper yielded every row once per worker)."""
    from torch.utils.data import DataLoader
    from transformers import default_data_collator

    from personal_copilot.dataset import FimEncoder
    from personal_copilot.modeling import load_tokenizer
    from personal_copilot.train.data import build_fim_data

    cfg = config(tiny_models["llama"], collected, tmp_path / "run", eval_fraction=0.0)
    tokenizer = load_tokenizer(str(tiny_models["llama"]))
    data = build_fim_data(cfg, tokenizer, FimEncoder(tokenizer), cfg.output)
    loader = DataLoader(data.train, batch_size=1, num_workers=2, collate_fn=default_data_collator)
    rows = [tuple(batch["input_ids"][0].tolist()) for _, batch in zip(range(12), loader, strict=False)]
    by_worker = [set(rows[0::2]), set(rows[1::2])]  # the DataLoader takes batches from its workers in turn
    assert len(by_worker[0]) == len(by_worker[1]) == 6 and not by_worker[0] & by_worker[1]
