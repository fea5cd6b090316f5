"""`pcopilot train` stopped by Ctrl-C, SIGTERM or a kill mid-checkpoint: what it says, and what the rerun yields."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from personal_copilot.cli import main, parse_config
from personal_copilot.train import LoraSettings, OptimSettings, TrainConfig, run_train
from personal_copilot.train.resume import TrainInterrupted, train_command

QUICK = {
    "seq_len": 64,
    "batch_size": 2,
    "gradient_accumulation_steps": 1,
    "logging_steps": 1,
    "eval_rows": 4,
    "eval_steps": 0,
    "gradient_checkpointing": False,
    "precision": "fp32",
    "scratch_vocab_size": 600,
}


def scratch_config(data: Path, output: Path, **overrides) -> TrainConfig:
    values = QUICK | {"max_steps": 4, "save_steps": 2} | overrides
    return TrainConfig(model="scratch:tiny", data=[str(data)], output=output, **values)


def assert_same_weights(actual_file: Path, expected_file: Path) -> None:
    expected, actual = load_file(expected_file), load_file(actual_file)
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0)


class StopAtStep:
    """A Trainer callback hook that stops the run once it reaches `step`: Ctrl-C, or a SIGTERM sent to itself."""

    def __init__(self, step: int, sigterm: bool) -> None:
        self.step, self.sigterm, self.fired = step, sigterm, False

    def __call__(self, args, state, control, **kwargs) -> None:
        if state.global_step >= self.step and not self.fired:
            self.fired = True
            if not self.sigterm:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler raises in this thread on the next bytecode


@pytest.fixture
def stop_at(monkeypatch):
    """`stop_at(step, sigterm=False)`: the next run is stopped at the end of optimizer step `step`."""
    from personal_copilot.train import callbacks

    def arm(step: int, sigterm: bool = False) -> None:
        class Stopping(callbacks.RichProgressCallback):
            on_step_end = StopAtStep(step, sigterm)

        monkeypatch.setattr(callbacks, "RichProgressCallback", Stopping)

    return arm


@pytest.fixture(scope="module")
def whole(collected: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of 4 steps with a checkpoint every 2."""
    out = tmp_path_factory.mktemp("whole") / "run"
    run_train(scratch_config(collected, out))
    return out


def test_kill_while_writing_the_first_checkpoint_restarts_as_a_fresh_run(
    collected: Path, whole: Path, tmp_path: Path, stop_at, capsys
) -> None:
    killed = tmp_path / "killed"
    stop_at(1)
    with pytest.raises(TrainInterrupted) as stopped:
        run_train(scratch_config(collected, killed))
    assert str(stopped.value).startswith("training stopped at step 1 of 4, before any checkpoint was complete")
    assert str(stopped.value).endswith("--resume auto") and stopped.value.checkpoint is None
    (killed / "checkpoint-2").mkdir()
    (killed / "checkpoint-2" / "README.md").write_text("")  # what a SIGKILL while saving leaves behind
    capsys.readouterr()

    report = run_train(scratch_config(collected, killed, resume=True))

    said = capsys.readouterr().err
    assert "checkpoint-2 is incomplete (no whole trainer_state.json" in said
    assert f"no complete checkpoint in {killed}: starting over from step 0" in said
    assert report.resumed_from is None and report.steps == 4
    assert_same_weights(killed / "adapter_model.safetensors", whole / "adapter_model.safetensors")


def test_sigterm_says_what_survived_and_its_command_continues(
    collected: Path, whole: Path, tmp_path: Path, stop_at, capsys
) -> None:
    out = tmp_path / "stopped"
    stop_at(3, sigterm=True)
    args = ["--model", "scratch:tiny", "--data", str(collected), "--output", str(out), "--max_steps", "4"]
    args += [f"--{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in QUICK.items()]
    assert main(["train", *args, "--save_steps", "2"]) == 128 + signal.SIGTERM

    said = capsys.readouterr().err
    first, command = said.strip().splitlines()[-2:]
    assert first == (
        f"pcopilot train: interrupted: training stopped at step 3 of 4; the newest complete checkpoint is "
        f"{out / 'checkpoint-2'} (step 2); continue from it with:"
    )
    assert command.startswith("  pcopilot train --model scratch:tiny") and command.endswith("--resume true")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the CLI put the default handler back

    assert main(shlex.split(command)[1:]) == 0
    said = capsys.readouterr().err
    assert "resuming from checkpoint-2 (step 2)" in said
    assert json.loads((out / "report.json").read_text())["resumed_from"] == "checkpoint-2"
    assert_same_weights(out / "adapter_model.safetensors", whole / "adapter_model.safetensors")


def test_the_resume_command_gives_the_same_config(tmp_path: Path) -> None:
    config = TrainConfig(
        model="org/some model",
        data=[str(tmp_path / "a b"), "c.jsonl:0.3"],
        output=tmp_path / "run",
        max_steps=7,
        save_total_limit=None,
        gradient_checkpointing=False,
        lora=LoraSettings(r=4, target_modules=["q_proj", "v_proj"]),
        optim=OptimSettings(learning_rate=1e-3),
        extra_training_args={"dataloader_num_workers": 2},
    )
    command = train_command(config, resume=True)
    assert command.startswith("pcopilot train --model 'org/some model' --data ")
    assert parse_config("train", shlex.split(command)[2:]) == dataclasses.replace(config, resume=True)
