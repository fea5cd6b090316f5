"""Settings of `pcopilot quickstart` and `pcopilot base`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass
class QuickstartConfig:
    """The whole personal-copilot loop, offline, on a CPU: collect your code, build (or reuse) the embedded base
    model, LoRA fine-tune it with FIM on your code, evaluate base against tuned on held-out files, and write a report
    with the commands that serve the result.

    Example: pcopilot quickstart                      (this project's own source)
             pcopilot quickstart --sources '[~/work/my-repo]' --output my_quickstart
    """

    sources: list[str] | str = field(default_factory=list)
    """Code to learn from: folders or git URLs, as `pcopilot collect` takes them (default: this project's source)."""
    output: Path = Path("quickstart_output")
    """Directory for everything the quickstart makes: data/, run/, eval/, report.md, report.html."""
    profile: Literal["default", "test"] = "default"
    """default: the full demo (minutes); test: a tiny version of every step (for tests and a first smoke check)."""
    workers: int = 2
    """Parallel processes for collecting and evaluating."""
    base_cache_dir: Path | None = None
    """Where built base models are cached (default: ~/.cache/personal_copilot/base)."""
    rebuild_base: bool = False
    """Build the base model again even if a cached one exists."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if isinstance(self.sources, str):
            self.sources = [self.sources]
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")


@dataclass
class BaseConfig:
    """Build (or show) the embedded default base model: a small Llama-style code model pretrained with FIM on this
    Python's standard library through `pcopilot train`, cached per recipe and reused by the quickstart.

    Example: pcopilot base
    """

    profile: Literal["default", "test"] = "default"
    """Recipe to build: default (the quickstart's base) or test (a tiny one)."""
    cache_dir: Path | None = None
    """Cache directory (default: ~/.cache/personal_copilot/base)."""
    rebuild: bool = False
    """Build again even if this recipe's base is cached."""
