"""What a person sees while a stage runs: progress (on stderr) and the summary table at the end (on stdout).

On a terminal progress is a live rich bar. Elsewhere (nohup, CI, `| tee`) a live bar shows nothing until it ends, so
progress is plain lines at a steady pace instead. Text is never wrapped by us: a printed command stays one line that
copies whole, whatever the width the console assumes (80 columns when it is not a terminal).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta

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

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)

LOG_EVERY_SECONDS = 30.0
"""Off a terminal, a progress line at least this often (while the work advances)…"""
LOG_EVERY_PERCENT = 5.0
"""…and each time the work passes another this many percent of its total…"""
LOG_AT_MOST_EVERY_SECONDS = 1.0
"""…but not more often than this: a loop done in a second is its first and last line."""


def progress_enabled() -> bool:
    """False when PCOPILOT_PROGRESS=0 (tests, benchmarks, logs)."""
    return os.environ.get("PCOPILOT_PROGRESS", "1") != "0"


def print_command(what: str, command: str) -> None:
    """`what: command` on stdout after a summary, on one line and without markup, so that it copies as it is."""
    stdout.print(f"{what}: {command}", markup=False, highlight=False, soft_wrap=True)


class ProgressLog:
    """Progress as plain lines: `training: 120/400 steps (30%), 2.10 steps/s, ETA 0:02:13, loss 1.2345`, one when it
    starts, then every `every_seconds` or every `every_percent` of the total, whichever comes first (but at most one a
    `at_most_every_seconds`), and one at the end. The pace defaults to the module's `LOG_*` settings; the clock is a
    parameter so that a test can drive it."""

    def __init__(
        self,
        description: str,
        total: int | None,
        completed: int = 0,
        unit: str = "",
        write: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        every_seconds: float | None = None,
        every_percent: float | None = None,
        at_most_every_seconds: float | None = None,
    ) -> None:
        self.description, self.total, self.unit = description, total or None, unit
        self._write = write or (lambda line: stderr.print(line, markup=False, highlight=False, soft_wrap=True))
        self._clock = clock
        self._every_seconds = LOG_EVERY_SECONDS if every_seconds is None else every_seconds
        self._every_share = (LOG_EVERY_PERCENT if every_percent is None else every_percent) / 100
        self._at_most_every_seconds = (
            LOG_AT_MOST_EVERY_SECONDS if at_most_every_seconds is None else at_most_every_seconds
        )
        self._start = (clock(), completed)
        self._completed, self._status = completed, ""
        self._logged_at = self._log(self._start[0])

    def update(self, completed: int, status: str = "") -> None:
        """Records how much is done (and a short status, e.g. the loss); logs a line when one is due."""
        self._completed, self._status = completed, status or self._status
        now = self._clock()
        since = now - self._logged_at[0]
        if completed <= self._logged_at[1] or since < self._at_most_every_seconds:
            return
        if since >= self._every_seconds or (
            self.total and self._share_steps(completed) > self._share_steps(self._logged_at[1])
        ):
            self._logged_at = self._log(now)

    def advance(self, n: int = 1) -> None:
        self.update(self._completed + n)

    def close(self) -> None:
        """The last line, with the time it took, unless the last one logged already says all there is."""
        if self._completed != self._logged_at[1] or not (self.total or self._completed):
            self._log(self._clock(), final=True)

    def _share_steps(self, completed: int) -> int:
        """How many `every_percent` steps of the total `completed` has passed."""
        return math.floor(completed / self.total / self._every_share + 1e-9)

    def _log(self, now: float, final: bool = False) -> tuple[float, int]:
        unit = f" {self.unit}" if self.unit else ""
        elapsed = now - self._start[0]
        if self.total:
            parts = [
                f"{self.description}: {self._completed:,}/{self.total:,}{unit} ({self._completed / self.total:.0%})"
            ]
        elif self._completed:
            parts = [f"{self.description}: {self._completed:,}{unit}"]
        else:  # a phase of unknown length: when it starts and when it ends
            parts = [f"{self.description}: " + (f"done in {_duration(elapsed)}" if final else "started")]
        rate = (self._completed - self._start[1]) / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            digits = 0 if rate >= 100 else 1 if rate >= 10 else 2
            parts.append(f"{rate:,.{digits}f}{unit or ' items'}/s" if rate >= 1 else f"{1 / rate:,.1f} s each")
            finished = final or not self.total or self._completed >= self.total
            parts.append(
                f"in {_duration(elapsed)}" if finished else f"ETA {_duration((self.total - self._completed) / rate)}"
            )
        if self._status:
            parts.append(self._status)
        self._write(", ".join(parts))
        return now, self._completed


class LiveBar:
    """A live rich progress bar on stderr, with the same `update` / `advance` / `close` as `ProgressLog`."""

    def __init__(self, description: str, total: int | None, completed: int = 0, unit: str = "") -> None:
        columns = (
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self._progress = Progress(*columns, console=stderr)
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, completed=completed, status="")

    def update(self, completed: int, status: str = "") -> None:
        self._progress.update(self._task, completed=completed, **({"status": status} if status else {}))

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def close(self) -> None:
        self._progress.stop()


def start_progress(
    description: str, total: int | None, completed: int = 0, unit: str = ""
) -> LiveBar | ProgressLog | None:
    """Progress on stderr: a live bar on a terminal, plain lines elsewhere, None when `PCOPILOT_PROGRESS=0`."""
    if not progress_enabled():
        return None
    kind = LiveBar if stderr.is_terminal else ProgressLog
    return kind(description, total, completed=completed, unit=unit)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Progress of a loop on stderr (see `start_progress`); yields `advance(n)`."""
    progress = start_progress(description, total)
    if progress is None:
        yield lambda n=1: None
        return
    try:
        yield progress.advance
    except BaseException:
        if isinstance(progress, LiveBar):
            progress.close()  # a plain log's last line stays where the work stopped, followed by the error
        raise
    progress.close()


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def print_summary(title: str, rows: Iterable[tuple[str, object]]) -> None:
    """Prints a two-column summary table (what, value) on stdout."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right", overflow="fold")  # a long path folds onto the next line, never cut with "…"
    for name, value in rows:
        table.add_row(name, _format(value))
    stdout.print(table)


def print_table(title: str, header: list[str], rows: Iterable[Iterable[object]]) -> None:
    """Prints a table with a header row on stdout."""
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*(_format(v) for v in row))
    stdout.print(table)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
