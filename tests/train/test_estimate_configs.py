"""`pcopilot estimate` on what a user has: the bundled configs of the recommended models (offline), the train YAMLs of
configs/train/ as `pcopilot train --config` takes them, a hub id it cannot reach, and the docs' sizing table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personal_copilot.cli import main, parse_config
from personal_copilot.errors import PcopilotError
from personal_copilot.train.estimate import GB, gpus_needed, run_estimate
from personal_copilot.train.estimate_table import DOC, sizing_table, with_table
from personal_copilot.train.model_config import BUNDLED_CONFIGS, bundled_config_dir, bundled_index, load_model_config
from personal_copilot.train.model_shape import read_model_shape

ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIGS = sorted((ROOT / "configs" / "train").glob("*/*.yaml"))
DOCS_HUB_IDS = ("Qwen/Qwen2.5-Coder-1.5B", "Qwen/Qwen2.5-Coder-7B", "bigcode/starcoder", "bigcode/starcoderbase-1b")


def test_the_index_lists_every_bundled_file_with_its_source() -> None:
    index = bundled_index()
    on_disk = {str(p.parent.relative_to(BUNDLED_CONFIGS)) for p in BUNDLED_CONFIGS.rglob("config.json")}
    assert on_disk == set(index)
    for hub_id, entry in index.items():
        assert entry["source"] == f"https://huggingface.co/{hub_id}/blob/main/config.json"
        assert entry["revision"] and entry["transcribed"] and entry["published_params"] > 0
    assert set(DOCS_HUB_IDS) <= set(index)  # every model the docs and configs/train name
    assert bundled_config_dir("qwen/qwen2.5-coder-7b") == BUNDLED_CONFIGS / "Qwen/Qwen2.5-Coder-7B"


@pytest.mark.parametrize("hub_id", sorted(bundled_index()))
def test_each_bundled_config_has_the_published_size(hub_id: str) -> None:
    """Built on the meta device, each config has the parameter count its model page publishes (rounded there)."""
    shape = read_model_shape(hub_id)
    published = bundled_index()[hub_id]["published_params"]
    assert shape.params == pytest.approx(published, rel=0.01)
    assert shape.lora_params > 0 and shape.layers == load_model_config(hub_id).get_text_config().num_hidden_layers


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_estimate_takes_every_train_config(path: Path) -> None:
    """The file a user passes to `pcopilot train --config` (lora.alpha, optim, fim … included) is an estimate's."""
    train = parse_config("train", ["--config", str(path)])
    config = parse_config("estimate", ["--config", str(path)])
    report = run_estimate(config)

    assert (report.model, report.method, report.seq_len, report.batch_size) == (
        train.model, train.method, train.seq_len, train.batch_size,
    )  # fmt: skip
    assert report.gradient_checkpointing == train.gradient_checkpointing
    assert report.precision == ("fp32" if train.precision == "fp32" else "bf16")
    assert report.tokens == train.max_steps * train.batch_size * train.gradient_accumulation_steps * train.seq_len
    if train.method != "full":
        assert report.trainable_params == read_model_shape(train.model, train.lora).lora_params
    assert report.run_memory.total > report.run_memory.overhead


def test_flags_after_the_config_win_and_change_the_estimate() -> None:
    path = str(ROOT / "configs/train/qwen2.5-coder-7b/qlora.yaml")
    as_configured = run_estimate(parse_config("estimate", ["--config", path]))
    bigger = run_estimate(parse_config("estimate", ["--config", path, "--batch_size", "4"]))
    rank_8 = run_estimate(parse_config("estimate", ["--lora.r", "8", "--config", path, "--lora.r", "8"]))

    assert (as_configured.batch_size, bigger.batch_size) == (2, 4)
    assert rank_8.trainable_params == as_configured.trainable_params // 4
    assert bigger.run_memory.activations > 1.9 * as_configured.run_memory.activations
    l4 = {fit.gpu: fit for fit in as_configured.fits}["L4"]
    assert (l4.with_checkpointing, l4.gpus_needed) == ("yes", 1)  # what docs/laptop_to_gpu.md says: one 24 GB GPU
    assert {fit.gpu: fit for fit in bigger.fits}["L4"].with_checkpointing == "no"


def test_the_runs_own_checkpointing_and_precision_decide() -> None:
    base = ["--model", "Qwen/Qwen2.5-Coder-1.5B", "--method", "full", "--batch_size", "1"]
    with_gc = parse_config("estimate", base)
    without_gc = parse_config("estimate", [*base, "--gradient_checkpointing", "false"])
    report = run_estimate(without_gc)
    assert report.run_memory == report.without_checkpointing
    assert report.run_memory.total > run_estimate(with_gc).run_memory.total
    assert gpus_needed(without_gc, "T4") > gpus_needed(with_gc, "T4") > 1  # activations are not sharded

    fp32 = run_estimate(parse_config("estimate", [*base, "--precision", "fp32"]))
    bf16 = run_estimate(with_gc)
    assert fp32.with_checkpointing.weights == pytest.approx(4 * fp32.params / GB)  # 4 B a weight, not 2
    assert fp32.states_gb == pytest.approx(bf16.states_gb)  # 16 B per trainable parameter either way
    # every layer's values double; the logits lose bf16's fp32 copy (10 B -> 8 B a logit)
    assert fp32.without_checkpointing.activations > 1.3 * bf16.without_checkpointing.activations


def test_a_hub_id_offline_fails_at_once_with_one_line(monkeypatch, capsys) -> None:
    """Neither bundled nor cached: HF_HUB_OFFLINE, or a Hub that does not answer, is one line, and the Hub's
    retrying download is never called."""
    from huggingface_hub import constants
    from transformers import AutoConfig

    def no_download(name, *args, **kwargs):
        raise AssertionError(f"tried to download {name}")

    monkeypatch.setattr(AutoConfig, "from_pretrained", no_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["estimate", "--model", "someone/not-bundled-7b"]) == 2
    error = capsys.readouterr().err.strip()
    assert "HF_HUB_OFFLINE" in error and "someone/not-bundled-7b" in error and "Qwen/Qwen2.5-Coder-7B" in error
    assert len(error.splitlines()) == 1

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    with pytest.raises(PcopilotError, match=r"cannot reach http://127\.0\.0\.1:9 .*\(offline\?\)"):
        load_model_config("someone/not-bundled-7b")


def test_a_run_folder_and_its_adapter_estimate_from_the_base(tmp_path: Path) -> None:
    """An adapter folder whose base is a bundled hub id is estimated on that base, offline."""
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "bigcode/starcoderbase-1b", "peft_type": "LORA", "r": 8})
    )
    assert read_model_shape(str(adapter)).params == read_model_shape("bigcode/starcoderbase-1b").params


def test_the_docs_sizing_table_is_what_estimate_says() -> None:
    """docs/laptop_to_gpu.md's table, regenerated (`python -m personal_copilot.train.estimate_table` rewrites it)."""
    text = DOC.read_text(encoding="utf-8")
    table = sizing_table()
    assert with_table(text, table) == text
    qwen_7b_qlora = next(row for row in table.splitlines() if "qwen2.5-coder-7b/qlora.yaml" in row)
    assert "one 24 GB GPU" in qwen_7b_qlora and "tight" not in qwen_7b_qlora
    with pytest.raises(PcopilotError, match="markers"):
        with_table("no markers here", table)
