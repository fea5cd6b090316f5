"""A run interrupted anywhere (Ctrl-C or SIGKILL), then re-run with other settings, gives exactly the dataset a clean
run with those settings gives, and never a planted secret; a cache that does not match the run is rebuilt."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from personal_copilot.collect import CollectConfig, DedupConfig, FilterConfig, run_collect
from personal_copilot.collect.report import CollectReport
from personal_copilot.collect.store import STATE_DIR
from tests.collect.conftest import FAKE_SECRETS, MAX_FILE_BYTES

# The killed run: secrets not redacted, other MinHash parameters, one more exclude glob. Each changes the caches.
OTHER_SETTINGS = {"redact_secrets": False, "dedup": {"num_perm": 64}, "filters": {"exclude": ["lib/own.py"]}}

# (module, function, when): the process signals itself on the first call of the function, before or after it runs.
KILL_POINTS = {
    "first source cached": ("personal_copilot.collect.run", "write_source_cache", "after"),
    "cache written, not renamed": ("os", "replace", "before"),
    "shards staged, not swapped": ("personal_copilot.collect.store", "_swap_in", "before"),
    "shards swapped, no manifest": ("personal_copilot.collect.store", "_swap_in", "after"),
    "manifest written, no card": ("personal_copilot.collect.run", "write_manifest", "after"),
}

_KILLED_RUN = """
import importlib, json, os, signal, sys
from pathlib import Path
from personal_copilot.collect import CollectConfig, DedupConfig, FilterConfig, run_collect

signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C raises here even when started with it ignored
args = json.loads(sys.argv[1])
module_name, function_name, when = args["point"]
owner = importlib.import_module(module_name)
original = getattr(owner, function_name)

def interrupted(*a, **k):
    if when == "before":
        os.kill(os.getpid(), args["signal"])
    result = original(*a, **k)
    os.kill(os.getpid(), args["signal"])
    return result

setattr(owner, function_name, interrupted)
settings = args["settings"]
config = CollectConfig(
    sources=args["sources"], output=Path(args["output"]), workers=1, cache_dir=Path(args["output"]).parent / "clones",
    redact_secrets=settings["redact_secrets"], dedup=DedupConfig(**settings["dedup"]),
    filters=FilterConfig(max_file_bytes=args["max_file_bytes"], **settings["filters"]),
)
run_collect(config)
print("not interrupted")
"""


def collect(sources: list[Path], out: Path, settings: dict | None = None) -> CollectReport:
    settings = settings or {"redact_secrets": True, "dedup": {}, "filters": {}}
    config = CollectConfig(
        sources=[str(s) for s in sources],
        output=out,
        workers=1,
        cache_dir=out.parent / "clones",
        redact_secrets=settings["redact_secrets"],
        dedup=DedupConfig(**settings["dedup"]),
        filters=FilterConfig(max_file_bytes=MAX_FILE_BYTES, **settings["filters"]),
    )
    return run_collect(config)


def interrupted_collect(sources: list[Path], out: Path, point: str, sig: signal.Signals, settings: dict) -> None:
    args = {
        "point": KILL_POINTS[point],
        "signal": int(sig),
        "settings": settings,
        "sources": [str(s) for s in sources],
        "output": str(out),
        "max_file_bytes": MAX_FILE_BYTES,
    }
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, json.dumps(args)], capture_output=True, text=True, timeout=300
    )
    assert "not interrupted" not in result.stdout
    assert result.returncode == -sig, result.stderr  # killed, or stopped by an uncaught KeyboardInterrupt
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in result.stderr


def counts(report: CollectReport) -> list[tuple]:
    return [
        (s.repo_id, s.files_seen, s.files_kept, s.dropped, s.secrets, s.duplicates_exact, s.duplicates_near)
        for s in report.sources
    ]


def readable_text(path: Path) -> str:
    """A file's text; a Parquet file (compressed on disk) is read back first."""
    try:
        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    except Exception:
        return path.read_bytes().decode("latin-1")


def files_holding_a_secret(out: Path) -> list[str]:
    files = [p for p in out.rglob("*") if p.is_file()]
    return [str(p.relative_to(out)) for p in files if any(s in readable_text(p) for s in FAKE_SECRETS.values())]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "sig"),
    [(point, signal.SIGKILL) for point in KILL_POINTS]
    + [("first source cached", signal.SIGINT), ("shards staged, not swapped", signal.SIGINT)],
)
def test_interrupted_run_then_rerun_with_other_settings_equals_a_clean_run(
    every_case_repo: Path, second_repo: Path, tmp_path: Path, point: str, sig: signal.Signals
) -> None:
    sources = [every_case_repo, second_repo]
    out = tmp_path / "out"
    collect(sources, out)  # the user's first, complete run with the defaults
    interrupted_collect(sources, out, point, sig, OTHER_SETTINGS)

    report = collect(sources, out)
    clean = collect(sources, tmp_path / "clean")

    assert pq.read_table(out / "data").to_pylist() == pq.read_table(tmp_path / "clean" / "data").to_pylist()
    assert counts(report) == counts(clean)
    assert report.secrets == clean.secrets and sum(report.secrets.values()) >= len(FAKE_SECRETS)
    assert files_holding_a_secret(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("point", ["first source cached", "manifest written, no card"])
def test_first_run_interrupted_then_other_settings(
    every_case_repo: Path, second_repo: Path, tmp_path: Path, point: str
) -> None:
    sources = [every_case_repo, second_repo]
    out = tmp_path / "out"
    interrupted_collect(sources, out, point, signal.SIGKILL, OTHER_SETTINGS)

    report = collect(sources, out)
    clean = collect(sources, tmp_path / "clean")

    assert pq.read_table(out / "data").to_pylist() == pq.read_table(tmp_path / "clean" / "data").to_pylist()
    assert counts(report) == counts(clean)
    assert files_holding_a_secret(out) == []


def test_caches_of_other_settings_are_not_reused(every_case_repo: Path, second_repo: Path, tmp_path: Path) -> None:
    sources = [every_case_repo, second_repo]
    out = tmp_path / "out"
    collect(sources, out, OTHER_SETTINGS)
    raw = pq.read_table(out / "data").to_pylist()
    assert files_holding_a_secret(out)  # redaction off: the secrets are in the rows, as asked

    report = collect(sources, out)

    assert [s.status for s in report.sources] == ["collected", "collected"]
    assert files_holding_a_secret(out) == []  # neither in the rows nor in a left-over cache
    assert len(pq.read_table(out / "data").to_pylist()) == len(raw) + 1  # lib/own.py is no longer excluded


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),  # truncated
        lambda path: path.write_bytes(b"not parquet at all"),
        lambda path: path.unlink(),
    ],
    ids=["truncated", "garbage", "deleted"],
)
def test_damaged_cache_is_rebuilt(every_case_repo: Path, tmp_path: Path, damage) -> None:
    out = tmp_path / "out"
    first = collect([every_case_repo], out)
    rows = pq.read_table(out / "data").to_pylist()
    (cache,) = (out / STATE_DIR / "sources").iterdir()
    damage(cache)

    report = collect([every_case_repo], out)

    assert report.sources[0].status == "collected"
    assert counts(report) == counts(first)
    assert pq.read_table(out / "data").to_pylist() == rows


def test_damaged_manifest_does_not_stop_the_next_run(every_case_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = collect([every_case_repo], out)
    (out / "manifest.json").write_text('{"format": 1, "sources": [')

    report = collect([every_case_repo], out)

    assert counts(report) == counts(first)
