"""Trainer callbacks: `metrics.jsonl` (one line per logging step) and progress with loss and tokens/s."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from personal_copilot.console import start_progress
from personal_copilot.train.metrics import METRICS_FILE, read_metrics

_LOGGED_KEYS = ("loss", "learning_rate", "grad_norm", "eval_loss")


class MetricsFileCallback(TrainerCallback):
    """Appends one JSON line per log event to `OUTPUT/metrics.jsonl`: step, loss, learning_rate, tokens_seen,
    tokens_per_second, and eval_loss when computed. A resumed run first drops the lines past its checkpoint."""

    def __init__(self, output_dir: Path) -> None:
        self.path = Path(output_dir) / METRICS_FILE
        self._last: tuple[float, int] | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if not state.is_world_process_zero:
            return
        kept = [line for line in read_metrics(self.path) if line["step"] <= state.global_step]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(line) + "\n" for line in kept))
        self._last = (time.perf_counter(), state.num_input_tokens_seen)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if state.global_step >= state.max_steps:
            control.should_log = True  # the last step's loss, also when it is not a multiple of --logging_steps

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs: dict | None = None, **kwargs
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        line: dict[str, Any] = {"step": state.global_step}
        line |= {key: logs[key] for key in _LOGGED_KEYS if key in logs}
        if "loss" in logs and self._last is not None:
            now, seen = time.perf_counter(), state.num_input_tokens_seen
            line["tokens_seen"] = seen
            line["tokens_per_second"] = round((seen - self._last[1]) / max(now - self._last[0], 1e-9), 1)
            self._last = (now, seen)
        if len(line) > 1:
            with self.path.open("a") as f:
                f.write(json.dumps(line) + "\n")


class RichProgressCallback(TrainerCallback):
    """Progress over optimizer steps with the latest loss and tokens/s (replaces Trainer's tqdm bar): a live rich bar
    on a terminal, plain lines every 30 s or 5 % elsewhere (nohup, CI, `| tee`)."""

    def __init__(self) -> None:
        self._progress = None
        self._losses = ""
        self._start: tuple[float, int] | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if state.is_world_process_zero:
            self._progress = start_progress("training", state.max_steps, completed=state.global_step, unit="steps")
            self._start = (time.perf_counter(), state.num_input_tokens_seen)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if self._progress is not None:
            self._progress.update(state.global_step, status=self._status(state))

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs: dict | None = None, **kwargs
    ) -> None:
        if self._progress is not None and logs:
            parts = [f"{key} {logs[key]:.4f}" for key in ("loss", "eval_loss") if key in logs]
            if parts:
                self._losses = ", ".join(parts)
                self._progress.update(state.global_step, status=self._status(state))

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _status(self, state: TrainerState) -> str:
        seconds, tokens = time.perf_counter() - self._start[0], state.num_input_tokens_seen - self._start[1]
        speed = f"{tokens / seconds:,.0f} tokens/s" if tokens > 0 and seconds > 0 else ""
        return ", ".join(part for part in (self._losses, speed) if part)
