"""Settings of `pcopilot base build` and `pcopilot base show`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from personal_copilot.base.recipe import RecipeName


@dataclass
class BuildConfig:
    """Pretrain the embedded base model from scratch with a recorded recipe: collect the standard library and the
    permissively licensed packages installed here (licenses read from their metadata), hold out a standard-library
    slice and whole packages, pretrain a small Llama-style model with FIM through `pcopilot train`, measure it on the
    held-out sets (bits per byte beside gzip and xz, FIM per hole kind, HumanEval) and write a model card.
    Resumable: run the same command again after an interruption.

    Example: pcopilot base build --recipe default --output base_build/
    """

    recipe: RecipeName = "default"
    """default: the shipped base (hours on a CPU, minutes on a GPU); tiny: a 5-minute model; test: seconds (CI)."""
    output: Path = Path("base_build")
    """Build directory: collected/, corpus/, run/, model/ (the finished base with its model card)."""
    workers: int = max(1, min(4, os.cpu_count() or 1))
    """Processes for collecting and for the HumanEval sandbox."""
    measure_bytes: int = 1_000_000
    """Bytes of each held-out set the bits per byte are measured on (0: all)."""
    fim_holes: int = 300
    """Held-out FIM holes per measurement (spread over the hole kinds)."""
    humaneval_problems: int = 164
    """HumanEval problems for pass@1 (0: skip)."""
    ship: bool = False
    """Copy the finished base into the package (personal_copilot/base/model/), replacing the shipped one."""

    def __post_init__(self) -> None:
        self.output = Path(self.output).expanduser()
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.fim_holes < 1 or self.humaneval_problems < 0 or self.measure_bytes < 0:
            raise ValueError("--fim_holes must be >= 1, --humaneval_problems and --measure_bytes >= 0")


@dataclass
class ShowConfig:
    """Show the default base model: where it is, its recipe, held-out figures and whether its weights match the
    sha256 its model card records.

    Example: pcopilot base show
    """

    model: Path | None = None
    """A base model folder (default: the shipped one, or $PCOPILOT_BASE_MODEL)."""
