"""What `pcopilot train` reports: steps, tokens, losses, speed and what was trained."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from personal_copilot.console import print_summary
from personal_copilot.dataset import DatasetSplit


@dataclass
class TrainReport:
    output: str
    model: str
    """The base model (for scratch: models, the directory it was saved to)."""
    method: str
    task: str
    family: str | None
    steps: int
    tokens_seen: int
    train_loss: float | None
    eval_loss: float | None
    seconds: float
    tokens_per_second: float
    trainable_parameters: int
    total_parameters: int
    world_size: int = 1
    resumed_from: str | None = None
    ranks: list[dict[str, Any]] = field(default_factory=list)
    """Per process: rank, world size, trainable elements held, checksum of the trainable weights at the end."""
    data: list[dict[str, Any]] = field(default_factory=list)
    """Per --data source: its weight and split (what is held out: repositories or files, bytes per repository)."""
    skipped: dict[str, int] = field(default_factory=dict)
    pushed_to: str | None = None
    exit_code: int = 0

    def print(self) -> None:
        if int(os.environ.get("RANK", "0")) != 0:
            return  # one table per run, from the main process
        rows: list[tuple[str, object]] = [
            ("run", self.output),
            ("base model", self.model),
            ("method / task", f"{self.method} / {self.task}"),
            ("FIM family", self.family or "-"),
            ("steps", self.steps),
            ("tokens seen", self.tokens_seen),
            ("train loss (last log)", "-" if self.train_loss is None else f"{self.train_loss:.4f}"),
            ("eval loss", "-" if self.eval_loss is None else f"{self.eval_loss:.4f}"),
            ("tokens/s", self.tokens_per_second),
            ("seconds", self.seconds),
            ("trainable / total params", f"{self.trainable_parameters:,} / {self.total_parameters:,}"),
            ("processes", self.world_size),
        ]
        if self.resumed_from:
            rows.append(("resumed from", self.resumed_from))
        for source in self.data:
            rows.append(("data", f"{source['data']} (weight {source['weight']:g})"))
            if "split_by" in source:
                rows += DatasetSplit.from_record(source).summary_rows()
            else:
                rows.append(("conversations: train / eval", f"{source['train']} / {source['eval']}"))
        rows += [(f"skipped: {reason}", count) for reason, count in self.skipped.items()]
        if self.pushed_to:
            rows.append(("pushed to", self.pushed_to))
        print_summary("pcopilot train", rows)


def read_train_report(run: Path) -> TrainReport:
    """The report a finished training run wrote (fields a newer report does not know are left out)."""
    known = {f.name for f in fields(TrainReport)}
    document = json.loads((Path(run) / "report.json").read_text())
    return TrainReport(**{key: value for key, value in document.items() if key in known})
