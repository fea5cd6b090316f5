"""What a person sees off a terminal (nohup, CI, `| tee`): progress lines while the work runs, commands that stay on
one line, table values that are never cut."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from personal_copilot import console
from personal_copilot.console import ProgressLog, print_command, print_summary, progress_bar
from personal_copilot.export.report import GgufReport


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def not_a_terminal(monkeypatch: pytest.MonkeyPatch, name: str) -> io.StringIO:
    """Replaces `console.<name>` with an 80-column console writing to a string, as rich sees a pipe."""
    buffer = io.StringIO()
    monkeypatch.setattr(console, name, Console(file=buffer, width=80, highlight=False, soft_wrap=True))
    assert not getattr(console, name).is_terminal
    return buffer


def test_progress_log_writes_a_line_every_five_percent_with_rate_eta_and_status() -> None:
    lines: list[str] = []
    clock = FakeClock()
    progress = ProgressLog("training", 400, unit="steps", write=lines.append, clock=clock)
    assert lines == ["training: 0/400 steps (0%)"]
    for step in range(1, 201):
        clock.now += 0.5
        progress.update(step, status=f"loss {4 / step:.4f}")
    assert len(lines) == 1 + 10  # 5 %, 10 %, … 50 %: written while it runs, not at the end
    assert lines[-1] == "training: 200/400 steps (50%), 2.00 steps/s, ETA 0:01:40, loss 0.0200"
    for step in range(201, 401):
        clock.now += 0.5
        progress.update(step)
    progress.close()
    assert len(lines) == 1 + 20
    assert lines[-1] == "training: 400/400 steps (100%), 2.00 steps/s, in 0:03:20, loss 0.0200"


def test_progress_log_writes_every_30_seconds_when_five_percent_takes_longer() -> None:
    lines: list[str] = []
    clock = FakeClock()
    progress = ProgressLog("generating completions", 1000, write=lines.append, clock=clock)
    for done in range(1, 10):
        clock.now += 10.0  # 5 % (50 items) would take 500 s
        progress.update(done)
    assert lines[1:] == [
        "generating completions: 3/1,000 (0%), 10.0 s each, ETA 2:46:10",
        "generating completions: 6/1,000 (1%), 10.0 s each, ETA 2:45:40",
        "generating completions: 9/1,000 (1%), 10.0 s each, ETA 2:45:10",
    ]
    clock.now += 120.0
    progress.update(9)  # nothing new done: nothing new to say
    assert len(lines) == 4


def test_progress_log_of_a_resumed_run_counts_its_rate_from_where_it_resumed() -> None:
    lines: list[str] = []
    clock = FakeClock()
    progress = ProgressLog("training", 100, completed=50, unit="steps", write=lines.append, clock=clock)
    clock.now += 10.0
    progress.update(55)
    assert lines == ["training: 50/100 steps (50%)", "training: 55/100 steps (55%), 2.0 s each, ETA 0:01:30"]


def test_a_phase_of_unknown_length_says_when_it_starts_and_ends() -> None:
    lines: list[str] = []
    clock = FakeClock()
    progress = ProgressLog("merging the adapter", None, write=lines.append, clock=clock)
    clock.now += 62.0
    progress.close()
    assert lines == ["merging the adapter: started", "merging the adapter: done in 0:01:02"]


def test_progress_bar_off_a_terminal_prints_lines_before_the_loop_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCOPILOT_PROGRESS", "1")
    monkeypatch.setattr(console, "LOG_AT_MOST_EVERY_SECONDS", 0.0)
    buffer = not_a_terminal(monkeypatch, "stderr")
    with progress_bar("reading files", 40) as advance:
        for _ in range(20):
            advance(1)
        halfway = buffer.getvalue()
        for _ in range(20):
            advance(1)
    assert halfway.startswith("reading files: 0/40 (0%)\n")
    assert re.search(r"^reading files: 20/40 \(50%\), [\d,.]+ items/s, ETA 0:00:00$", halfway, re.MULTILINE)
    assert "40/40" not in halfway
    assert re.search(r"^reading files: 40/40 \(100%\), [\d,.]+ items/s, in 0:00:00$", buffer.getvalue(), re.MULTILINE)


def test_progress_bar_on_a_terminal_is_a_live_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCOPILOT_PROGRESS", "1")
    buffer = io.StringIO()
    monkeypatch.setattr(console, "stderr", Console(file=buffer, width=80, force_terminal=True))
    with progress_bar("reading files", 4) as advance:
        advance(4)
    assert "reading files" in buffer.getvalue() and "4/4" in buffer.getvalue()
    assert "reading files: 0/4" not in buffer.getvalue()


def test_progress_off_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = not_a_terminal(monkeypatch, "stderr")
    with progress_bar("reading files", 4) as advance:
        advance(4)
    assert buffer.getvalue() == ""


def test_a_long_command_stays_on_one_line_on_an_80_column_console(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = not_a_terminal(monkeypatch, "stdout")
    command = "pcopilot serve --model runs/" + "a-very-long-run-name-" * 5 + " --adapters chat=[runs/chat]"
    print_command("next", command)
    assert buffer.getvalue() == f"next: {command}\n"


def test_export_gguf_try_it_command_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = not_a_terminal(monkeypatch, "stdout")
    output = "/home/someone/projects/acme/exports/" + "x" * 40 + "/model-q8_0.gguf"
    report = GgufReport(
        output=output,
        size_bytes=12_345_678,
        outtype="q8_0",
        base_model="bigcode/starcoderbase-1b",
        adapter="runs/sc1b-lora",
        family="starcoder",
        pre_tokenizer="starcoder",
        fim_token_ids={"tokenizer.ggml.fim_pre_token_id": 1},
        tokenizer_texts_checked=12,
        converter="/cache/llama.cpp",
        merge_seconds=1.0,
        convert_seconds=2.0,
        seconds=3.0,
    )
    report.print()
    command = f"pcopilot run --gguf {output} --prompt 'def add(a, b):' --suffix '    return c'"
    assert f"try it: {command}\n" in stdout.getvalue()


def test_summary_values_fold_but_are_never_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = not_a_terminal(monkeypatch, "stdout")
    path = "/home/someone/projects/" + "deeply/nested/" * 8 + "run"
    print_summary("pcopilot train", [("run", path)])
    cells = [line.split("│")[2].strip() for line in stdout.getvalue().splitlines() if line.count("│") == 3]
    assert "…" not in stdout.getvalue() and "".join(cells) == path
