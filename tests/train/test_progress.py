"""Training progress off a terminal (nohup, CI, `| tee`): step/total, %, rate, ETA and loss while it runs."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from transformers import TrainerControl, TrainerState

from personal_copilot import console
from personal_copilot.train.callbacks import RichProgressCallback


def test_training_progress_off_a_terminal_is_lines_with_loss_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCOPILOT_PROGRESS", "1")
    monkeypatch.setattr(console, "LOG_AT_MOST_EVERY_SECONDS", 0.0)
    buffer = io.StringIO()
    monkeypatch.setattr(console, "stderr", Console(file=buffer, width=80))
    state, control, callback = TrainerState(max_steps=20, global_step=0), TrainerControl(), RichProgressCallback()

    callback.on_train_begin(None, state, control)
    for step in range(1, 21):
        state.global_step, state.num_input_tokens_seen = step, step * 64
        if step % 5 == 0:
            callback.on_log(None, state, control, logs={"loss": 10 / step})
        callback.on_step_end(None, state, control)
        if step == 10:
            halfway = buffer.getvalue()
    callback.on_train_end(None, state, control)

    assert halfway.startswith("training: 0/20 steps (0%)\n")
    line = r"training: 10/20 steps \(50%\), [\d,.]+ steps/s, ETA \d+:\d\d:\d\d, loss 1\.0000, [\d,]+ tokens/s"
    assert re.search(f"^{line}$", halfway, re.MULTILINE), halfway
    assert "20/20" not in halfway
    assert buffer.getvalue().splitlines()[-1].startswith("training: 20/20 steps (100%), ")
    assert len(buffer.getvalue().splitlines()) == 21  # 5 % is one step here: a line each
