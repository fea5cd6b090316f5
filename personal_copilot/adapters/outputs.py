"""What every `pcopilot adapters` command leaves in its output folder besides the weights: the tokenizer, the recipe
(`pcopilot_config.yaml`, which later stages and `inspect` read) and `report.json`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from personal_copilot.configs import honour_umask, write_report, write_run_config
from personal_copilot.errors import PcopilotError


def check_output(output: Path, overwrite: bool, inputs: list[Path]) -> None:
    """Fails before any work when `output` is an input, or holds something and --overwrite was not given."""
    if any(output.resolve() == p.resolve() for p in inputs):
        raise PcopilotError(f"--output {output} is one of the inputs; choose another folder")
    if output.exists() and not overwrite and (not output.is_dir() or any(output.iterdir())):
        raise PcopilotError(f"--output {output} is not empty; choose another folder or pass --overwrite")


@contextmanager
def staged_output(output: Path) -> Iterator[Path]:
    """A new folder next to `output` to write into, which replaces `output` only when the block succeeds: a failed or
    interrupted command leaves no half-written adapter or model behind, and the old one in place."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    honour_umask(staging)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if output.is_dir():
        shutil.rmtree(output)
    elif output.exists():
        output.unlink()
    staging.rename(output)


def save_tokenizer(source: str | Path, output: Path) -> None:
    """Saves the tokenizer of `source` (an adapter run's may hold added chat tokens) unchanged into `output`."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(output))


def write_outputs(output: Path, command: str, config: Any, report: Any, facts: dict[str, Any]) -> None:
    """`pcopilot_config.yaml` (stage `adapters <command>`, the config, and the record's `facts`: base_model, family,
    recipe …) and `report.json`."""
    write_run_config(output, f"adapters {command}", config, **facts)
    write_report(output, report)
