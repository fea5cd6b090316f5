"""Benchmark of the training-data pipeline: tokens/s of read shards -> FIM -> pack (`ExampleStream`) against plain
batch tokenization of the same documents, read the same way, in the same run. Goal: FIM + packing cost < 20 %.

    python benchmarks/dataset.py                          # collects ~8 MB of the Python standard library first
    python benchmarks/dataset.py --data DIR --tokenizer TOK --seq_len 2048

Each variant runs `--repeat` times over every document, taking turns; the fastest run counts. The overhead is read
from processor time (all threads), which other programs on the machine disturb far less than wall time; both are
shown. Tokens are what the model sees: for the pipeline, sentinels and end-of-text included, padding excluded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PCOPILOT_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from personal_copilot.collect import CollectConfig, DedupConfig, run_collect
from personal_copilot.console import print_summary, print_table, stdout
from personal_copilot.dataset import (
    ExampleStream,
    FimConfig,
    FimEncoder,
    TokenizerConfig,
    iter_documents,
    list_shards,
    load_tokenizer,
    run_tokenizer,
)

BASELINE = "plain tokenization (baseline)"
_SKIPPED_DIRS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__", "turtledemo"}


def copy_standard_library(destination: Path, max_bytes: int) -> Path:
    """Copies up to `max_bytes` of the standard library's .py files (sorted by path) into a fresh folder."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    copied = 0
    for path in sorted(stdlib.rglob("*.py")):
        relative = path.relative_to(stdlib)
        if _SKIPPED_DIRS & set(relative.parts[:-1]) or copied >= max_bytes:
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied += path.stat().st_size
    return destination


def plain_tokenization(shards: list[Path], encoder: FimEncoder) -> int:
    """The baseline: read the shards and batch-tokenize every document as it is."""
    return sum(len(ids) for batch in iter_documents(shards) for ids in encoder.encode([d.content for d in batch]))


def pipeline(shards: list[Path], encoder: FimEncoder, fim: FimConfig, seq_len: int, packing: bool) -> int:
    stream = ExampleStream(shards, encoder, fim, seq_len=seq_len, packing=packing)
    return sum(len(row.input_ids) - row.padding for row in stream)


@dataclass
class Timing:
    wall: float = float("inf")
    cpu: float = float("inf")
    """Processor time of all the process's threads: what the work costs, even when other programs share the CPU."""
    tokens: int = 0


def fastest_runs(runs: dict[str, Callable[[], int]], repeat: int) -> dict[str, Timing]:
    """The fastest wall and processor times of each run; runs take turns, so a busy spell hits all of them."""
    best = {name: Timing() for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            tokens = run()
            timing = best[name]
            timing.wall = min(timing.wall, time.perf_counter() - wall)
            timing.cpu = min(timing.cpu, time.process_time() - cpu)
            timing.tokens = tokens
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a `pcopilot collect` output (default: collect the stdlib)")
    parser.add_argument("--tokenizer", help="tokenizer dir or id (default: train an 8192-token StarCoder-family one)")
    parser.add_argument("--megabytes", type=float, default=8.0, help="stdlib source to collect without --data")
    parser.add_argument("--seq_len", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pcopilot-bench-") as scratch:
        work = Path(scratch)
        data = args.data
        if data is None:
            source = copy_standard_library(work / "stdlib", int(args.megabytes * 1e6))
            config = CollectConfig(
                sources=[str(source)],
                output=work / "data",
                workers=2,
                redact_secrets=False,
                dedup=DedupConfig(near=False),
            )
            run_collect(config)
            data = work / "data"
        tokenizer_name = args.tokenizer
        if tokenizer_name is None:
            run_tokenizer(TokenizerConfig(data=data, output=work / "tokenizer", vocab_size=8192))
            tokenizer_name = str(work / "tokenizer")
        shards = list_shards(data)
        encoder = FimEncoder(load_tokenizer(tokenizer_name))
        megabytes = sum(len(d.content.encode()) for batch in iter_documents(shards) for d in batch) / 1e6

        variants = {
            "FIM char uniform, packed (default)": (FimConfig(level="char", span="uniform"), True),
            "FIM char uniform, whole files, packed": (FimConfig(level="char", span="uniform", scope="file"), True),
            "FIM char line, packed": (FimConfig(level="char", span="line"), True),
            "FIM token uniform, packed": (FimConfig(level="token", span="uniform"), True),
            "FIM token line, packed": (FimConfig(level="token", span="line"), True),
            "FIM char uniform, unpacked": (FimConfig(level="char", span="uniform"), False),
            "no FIM, packed": (FimConfig(rate=0.0), True),
        }
        runs = {BASELINE: lambda: plain_tokenization(shards, encoder)}
        for name, (fim, packing) in variants.items():
            runs[name] = lambda f=fim, p=packing: pipeline(shards, encoder, f, args.seq_len, p)
        results = fastest_runs(runs, args.repeat)

    base = results[BASELINE]
    rows = [
        (
            name,
            t.tokens,
            round(t.tokens / t.wall),
            round(t.tokens / t.cpu),
            "" if name == BASELINE else f"{t.cpu / base.cpu - 1:+.1%}",
            "" if name == BASELINE else f"{t.wall / base.wall - 1:+.1%}",
        )
        for name, t in results.items()
    ]
    stdout.width = max(stdout.width, 120)  # one line per variant, also when piped
    print_summary(
        "benchmarks/dataset.py",
        [
            ("documents (MB)", megabytes),
            ("tokenizer", tokenizer_name if args.tokenizer else "8192-token BPE trained on the data"),
            ("seq_len", args.seq_len),
            ("CPU threads", os.cpu_count()),
        ],
    )
    print_table(
        "Read shards -> FIM -> pack vs plain tokenization",
        ["pipeline", "tokens", "tokens/s (wall)", "tokens/s (CPU)", "CPU time vs plain", "wall time vs plain"],
        rows,
    )


if __name__ == "__main__":
    main()
