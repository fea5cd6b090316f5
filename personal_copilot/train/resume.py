"""Continuing a run: which checkpoint survived an interruption, what `--resume` picks (and says), and the command that
continues a run stopped by Ctrl-C or SIGTERM."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from pathlib import Path
from typing import Any

from personal_copilot.console import stderr
from personal_copilot.errors import PcopilotError
from personal_copilot.train.config import TrainConfig

TRAINER_STATE = "trainer_state.json"
"""Written last into a checkpoint by the Trainer: a checkpoint without it was cut short."""


def numbered_checkpoints(output: Path) -> list[Path]:
    """The `checkpoint-N` folders of a run, newest (highest N) first."""
    if not output.is_dir():
        return []
    steps = {p: p.name.removeprefix("checkpoint-") for p in output.glob("checkpoint-*")}
    return sorted((p for p, step in steps.items() if step.isdigit()), key=lambda p: int(steps[p]), reverse=True)


def checkpoint_step(checkpoint: Path) -> int | None:
    """The step a checkpoint holds, None when it is incomplete (its `trainer_state.json` missing or cut)."""
    try:
        return int(json.loads((checkpoint / TRAINER_STATE).read_text())["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def last_complete_checkpoint(output: Path) -> Path | None:
    """The newest `checkpoint-N` whose `trainer_state.json` is whole: a run killed while writing a checkpoint resumes
    from the one before."""
    return next((c for c in numbered_checkpoints(output) if checkpoint_step(c) is not None), None)


def checkpoint_to_resume(config: TrainConfig) -> str | None:
    """The checkpoint `--resume` asks for: the newest complete one (true, or auto when there is one), or none. Says
    which incomplete checkpoints it skips, which one it continues from, or that it starts over from step 0.

    Raises:
        PcopilotError: checkpoints there without --resume, or --resume true on a folder that never had one.
    """
    checkpoints = numbered_checkpoints(config.output)
    last = last_complete_checkpoint(config.output)
    if last and config.resume is False:
        raise PcopilotError(
            f"{config.output} already has checkpoints ({last.name}); "
            "continue with --resume true (or auto), or choose another --output"
        )
    if config.resume is False:
        return None
    incomplete = checkpoints[: checkpoints.index(last)] if last else checkpoints
    if last is None and not incomplete and config.resume is True:
        raise PcopilotError(
            f"--resume true: {config.output} holds no checkpoint; use --resume auto to start when there is none"
        )
    for checkpoint in incomplete:
        say(
            f"{checkpoint.name} is incomplete (no whole {TRAINER_STATE}: the run was stopped while writing it); "
            "skipping it"
        )
    if last is not None:
        say(f"resuming from {last.name} (step {checkpoint_step(last)})")
    elif incomplete:
        say(f"no complete checkpoint in {config.output}: starting over from step 0 (as a fresh run would)")
    return str(last) if last else None


class TrainInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM: says at which step, which checkpoint survived, and how to continue."""

    def __init__(self, step: int, max_steps: int, checkpoint: Path | None, command: str) -> None:
        super().__init__(step, max_steps, checkpoint, command)
        self.step = step
        self.max_steps = max_steps
        self.checkpoint = checkpoint
        self.command = command

    def __str__(self) -> str:
        stopped = f"training stopped at step {self.step} of {self.max_steps}"
        if self.checkpoint is None:
            return f"{stopped}, before any checkpoint was complete; start over with:\n  {self.command}"
        survived = f"{self.checkpoint} (step {checkpoint_step(self.checkpoint)})"
        return f"{stopped}; the newest complete checkpoint is {survived}; continue from it with:\n  {self.command}"


def interrupted(config: TrainConfig, step: int) -> TrainInterrupted:
    """What to raise when training stops at `step`: the checkpoint that survived and the command that continues."""
    checkpoint = last_complete_checkpoint(config.output)
    resume = "true" if checkpoint else "auto"
    return TrainInterrupted(step, config.max_steps, checkpoint, train_command(config, resume=resume))


def train_command(config: TrainConfig, **overrides: Any) -> str:
    """The `pcopilot train` command line that gives `config` (with `overrides`): --model, --data and --output, then
    every setting that differs from its default."""
    values = _flags(config, TrainConfig(), "") | {field: _value(value) for field, value in overrides.items()}
    leading = {flag: values.pop(flag) for flag in ("model", "data", "output")}
    return shlex.join(["pcopilot", "train", *(part for f, v in (leading | values).items() for part in (f"--{f}", v))])


def _flags(value: Any, default: Any, prefix: str) -> dict[str, str]:
    flags: dict[str, str] = {}
    for field in dataclasses.fields(value):
        mine, theirs = getattr(value, field.name), getattr(default, field.name)
        if dataclasses.is_dataclass(mine):
            flags |= _flags(mine, theirs, f"{prefix}{field.name}.")
        elif mine != theirs or (not prefix and field.name in ("model", "data", "output")):
            flags[prefix + field.name] = _value(mine)
    return flags


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def say(text: str) -> None:
    """One line for the person running the command (from the main process only; never wrapped)."""
    if int(os.environ.get("RANK", "0")) == 0:
        stderr.print(text, soft_wrap=True, markup=False, highlight=False)
