"""General code for the quickstart, from this interpreter's standard library: the modules the base trained on (mixed
into the fine-tune so it does not forget them) and the modules the base held out (the forgetting check).

Which modules the base held out is read from its record, so the check measures code neither model trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from personal_copilot.base import STDLIB_EXCLUDES, STDLIB_REPO, stdlib_dir, stdlib_module

REPLAY_FILE = "replay.parquet"
HELDOUT_FILE = "heldout.parquet"


@dataclass(frozen=True)
class GeneralCode:
    replay: Path
    """Standard-library files the base trained on."""
    held_out: Path
    """Standard-library files of the modules the base held out."""
    held_out_modules: tuple[str, ...]


def general_code(out: Path, held_out_modules: list[str], workers: int) -> GeneralCode:
    """Collects the standard library into `out` (incrementally) and splits it by the base's held-out modules."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from personal_copilot.collect import CollectConfig, FilterConfig, run_collect
    from personal_copilot.dataset import list_shards

    collected = out / "collected"
    run_collect(
        CollectConfig(
            sources=[f"{STDLIB_REPO}={stdlib_dir()}"],
            output=collected,
            workers=workers,
            filters=FilterConfig(exclude=list(STDLIB_EXCLUDES)),
        )
    )
    table = pq.read_table(list_shards(collected), columns=["repo_id", "file_path", "content"])
    held = set(held_out_modules)
    is_held = [
        path.endswith(".py") and stdlib_module(repo, path) in held
        for repo, path in zip(table["repo_id"].to_pylist(), table["file_path"].to_pylist(), strict=True)
    ]
    is_replay = [p.endswith(".py") and not h for p, h in zip(table["file_path"].to_pylist(), is_held, strict=True)]
    paths = GeneralCode(out / REPLAY_FILE, out / HELDOUT_FILE, tuple(sorted(held)))
    for path, keep in ((paths.replay, is_replay), (paths.held_out, is_held)):
        partial = path.with_suffix(".partial")
        pq.write_table(table.filter(pa.array(keep)), partial)
        partial.replace(path)
    return paths
