"""`pcopilot quickstart`: the whole personal-copilot loop, offline, on this project's own source.

For now it runs the first stage: it collects the personal-copilot package into a dataset and prints the report.
Later stages (dataset, train, eval, serve, export) join here as they land.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import personal_copilot
from personal_copilot.collect import CollectConfig, CollectReport, run_collect
from personal_copilot.configs import write_report, write_run_config


def _project_source() -> Path:
    """The source tree to learn from: the repository checkout when running from one, else the installed package."""
    package = Path(personal_copilot.__file__).resolve().parent
    checkout = package.parent
    return checkout if (checkout / "pyproject.toml").is_file() else package


@dataclass
class QuickstartConfig:
    """Run the personal-copilot loop end to end on this project's own code, with no network and no GPU."""

    output: Path = Path("quickstart_output")
    """Directory for everything the quickstart makes (the collected dataset lands in OUTPUT/data)."""
    source: Path | None = None
    """Code to learn from (default: this project's own source tree)."""
    workers: int = 2
    """Parallel processes."""


@dataclass
class QuickstartReport:
    collect: CollectReport
    exit_code: int = 0

    def print(self) -> None:
        self.collect.print()


def run_quickstart(config: QuickstartConfig) -> QuickstartReport:
    """Collects the source into `OUTPUT/data` (more stages join as they land) and returns their reports."""
    source = config.source or _project_source()
    collect = run_collect(CollectConfig(sources=[str(source)], output=config.output / "data", workers=config.workers))
    report = QuickstartReport(collect=collect, exit_code=collect.exit_code)
    write_run_config(config.output, "quickstart", config)
    write_report(config.output, report)
    return report
