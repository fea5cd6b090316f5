"""What every `pcopilot adapters` command leaves in its output folder besides the weights: the tokenizer, the recipe
(`pcopilot_config.yaml`, which later stages and `inspect` read) and `report.json`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from personal_copilot.configs import write_report, write_run_config
from personal_copilot.errors import PcopilotError


def prepare_output(output: Path, overwrite: bool, inputs: list[Path]) -> None:
    """Creates `output`; refuses a non-empty one without --overwrite, and one that is an input."""
    if any(output.resolve() == p.resolve() for p in inputs):
        raise PcopilotError(f"--output {output} is one of the inputs; choose another folder")
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise PcopilotError(f"--output {output} is not empty; choose another folder or pass --overwrite")
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)


def save_tokenizer(source: str | Path, output: Path) -> None:
    """Saves the tokenizer of `source` (an adapter run's may hold added chat tokens) unchanged into `output`."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(output))


def write_outputs(output: Path, command: str, config: Any, report: Any, extra: dict[str, Any]) -> None:
    """`pcopilot_config.yaml` (stage `adapters <command>`, the config, and `extra`: base_model, family, recipe …) and
    `report.json`."""
    write_run_config(output, f"adapters {command}", config, extra=extra)
    write_report(output, report)
