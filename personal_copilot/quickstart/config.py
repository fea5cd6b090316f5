"""Settings of `pcopilot quickstart`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass
class QuickstartConfig:
    """The whole personal-copilot loop, offline, on a CPU: collect your code, LoRA fine-tune the shipped base model
    with FIM on it, evaluate base against tuned on held-out files (and on held-out general code), and write a
    report with side-by-side completions and the commands that serve the result. A second run reuses what did not
    change; an interrupted one resumes.

    Example: pcopilot quickstart                      (this project's own source)
             pcopilot quickstart --sources '[~/work/my-repo]' --output my_quickstart
    """

    sources: list[str] | str = field(default_factory=list)
    """Code to learn from: folders or git URLs, as `pcopilot collect` takes them (default: this project's source)."""
    output: Path = Path("quickstart_output")
    """Directory for everything the quickstart makes: data/, general/, run/, eval/, report.md, report.html."""
    profile: Literal["default", "test"] = "default"
    """default: the full demo (minutes); test: a tiny version of every step (for tests and a first smoke check)."""
    workers: int = 2
    """Parallel processes for collecting and evaluating."""

    def __post_init__(self) -> None:
        self.output = Path(self.output).expanduser()
        if isinstance(self.sources, str):
            self.sources = [self.sources]
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
