"""A run killed with SIGKILL and resumed ends where an uninterrupted one does; two processes really train together."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ARGS = [
    "--seq_len", "64", "--batch_size", "2", "--gradient_accumulation_steps", "1", "--logging_steps", "1",
    "--eval_rows", "4", "--gradient_checkpointing", "false", "--precision", "fp32", "--eval_steps", "0",
    "--optim.learning_rate", "1e-2",
]  # fmt: skip


def train_command(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    args = ["train", "--model", str(model), "--data", str(data), "--output", str(out), *ARGS, *extra]
    return [sys.executable, "-m", "personal_copilot", *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PCOPILOT_PROGRESS": "0", "OMP_NUM_THREADS": "1"}


def final_losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]


@pytest.mark.slow
def test_killed_and_resumed_equals_uninterrupted(tiny_models, collected: Path, tmp_path: Path) -> None:
    steps = ["--max_steps", "12", "--save_steps", "3"]
    whole = tmp_path / "whole"
    subprocess.run(train_command(tiny_models["llama"], collected, whole, *steps), check=True, env=environment())

    killed = tmp_path / "killed"
    process = subprocess.Popen(train_command(tiny_models["llama"], collected, killed, *steps), env=environment())
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint-3" / "trainer_state.json").is_file():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "report.json").exists()  # it really died before the end

    resume = [*steps, "--resume", "true"]
    subprocess.run(train_command(tiny_models["llama"], collected, killed, *resume), check=True, env=environment())

    report = json.loads((killed / "report.json").read_text())
    assert report["resumed_from"].startswith("checkpoint-") and report["steps"] == 12
    expected, actual = load_file(whole / "adapter_model.safetensors"), load_file(killed / "adapter_model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=1e-6)
    assert final_losses(killed) == pytest.approx(final_losses(whole), abs=1e-5)


@pytest.mark.slow
def test_two_processes_train_in_sync(tiny_models, collected: Path, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    out = tmp_path / "ddp"
    command = train_command(tiny_models["llama"], collected, out, "--max_steps", "3", "--save_steps", "3")
    launcher = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "personal_copilot", *command[3:]]
    subprocess.run(launcher, check=True, env=environment())

    report = json.loads((out / "report.json").read_text())
    assert report["world_size"] == 2
    ranks = sorted(report["ranks"], key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # data parallel: gradients were averaged
    assert ranks[0]["elements"] == report["trainable_parameters"]
    assert report["tokens_seen"] == 3 * 2 * 2 * 64  # both ranks' batches count
