"""What a person sees while a stage runs: progress bars (on stderr) and the summary table at the end (on stdout)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def progress_enabled() -> bool:
    """False when PCOPILOT_PROGRESS=0 (tests, benchmarks, logs)."""
    return os.environ.get("PCOPILOT_PROGRESS", "1") != "0"


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields `advance(n)`. `PCOPILOT_PROGRESS=0` turns bars off."""
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr, disable=not progress_enabled()) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def print_summary(title: str, rows: Iterable[tuple[str, object]]) -> None:
    """Prints a two-column summary table (what, value) on stdout."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, _format(value))
    stdout.print(table)


def print_table(title: str, header: list[str], rows: Iterable[Iterable[object]]) -> None:
    """Prints a table with a header row on stdout."""
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_format(v) for v in row))
    stdout.print(table)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
