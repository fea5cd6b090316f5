"""The dataset directory on disk.

```
DIR/data/train-00000-of-00002.parquet   the rows (repo_id, file_path, content, language, num_bytes, sha256, commit)
DIR/manifest.json                       per source: commit, fingerprint, files kept / dropped by reason
DIR/report.json, DIR/pcopilot_config.yaml, DIR/README.md (dataset card)
DIR/.pcopilot/sources/*.parquet         per source, its filtered and redacted files before deduplication
```
The per-source files let a re-run skip unchanged sources yet deduplicate across all of them again. New shards are
written aside and swapped in at the end, so a run killed half way leaves the previous dataset as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from personal_copilot.collect.process import FileRecord
from personal_copilot.configs import write_atomic

DATA_DIR = "data"
STATE_DIR = ".pcopilot"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1

CACHE_SCHEMA = pa.schema(
    [
        ("file_path", pa.string()),
        ("content", pa.large_string()),
        ("language", pa.string()),
        ("num_bytes", pa.int64()),
        ("sha256", pa.string()),
        ("norm_hash", pa.string()),
        ("minhash", pa.binary()),
    ]
)
DATASET_SCHEMA = pa.schema(
    [
        ("repo_id", pa.string()),
        ("file_path", pa.string()),
        ("content", pa.large_string()),
        ("language", pa.string()),
        ("num_bytes", pa.int64()),
        ("sha256", pa.string()),
        ("commit", pa.string()),
    ]
)
_ROW_GROUP_ROWS = 2048


def source_cache_path(out: Path, repo_id: str) -> Path:
    """Where a source's pre-dedup files are kept (name readable, unique per repo_id)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", repo_id)[:80]
    return out / STATE_DIR / "sources" / f"{readable}-{hashlib.sha256(repo_id.encode()).hexdigest()[:10]}.parquet"


def write_source_cache(path: Path, records: list[FileRecord]) -> None:
    """Writes a source's records sorted by path, atomically."""
    records = sorted(records, key=lambda r: r.file_path)
    table = pa.Table.from_pylist([asdict(r) for r in records], schema=CACHE_SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    pq.write_table(table, partial, compression="zstd", row_group_size=_ROW_GROUP_ROWS)
    os.replace(partial, path)


def read_fingerprints(path: Path) -> pa.Table:
    """The dedup columns (file_path, norm_hash, minhash) and num_bytes of a source cache."""
    return pq.read_table(path, columns=["file_path", "norm_hash", "minhash", "num_bytes"])


class _ShardWriter:
    """Writes rows into size-capped Parquet shards named once their number is known."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory, self.max_bytes = directory, max_bytes
        self.paths: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._bytes = 0

    def write(self, table: pa.Table) -> None:
        sizes = np.cumsum(table.column("num_bytes").to_numpy())
        offset = 0
        while offset < table.num_rows:
            if self._writer is None or self._bytes >= self.max_bytes:
                self._open_next()
            base = sizes[offset - 1] if offset else 0
            fits = int(np.searchsorted(sizes[offset:] - base, self.max_bytes - self._bytes, side="right"))
            count = max(fits, 1) if self._bytes == 0 else fits
            if count == 0:
                self._bytes = self.max_bytes
                continue
            chunk = table.slice(offset, count)
            self._writer.write_table(chunk, row_group_size=_ROW_GROUP_ROWS)
            self._bytes += int(sizes[offset + count - 1] - base)
            offset += count

    def _open_next(self) -> None:
        self._close_current()
        self.paths.append(self.directory / f"shard-{len(self.paths):05d}.parquet")
        self._writer = pq.ParquetWriter(self.paths[-1], DATASET_SCHEMA, compression="zstd")
        self._bytes = 0

    def _close_current(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self) -> list[str]:
        """Closes the last shard and renames all to `train-XXXXX-of-YYYYY.parquet` (one empty shard if no rows)."""
        if not self.paths:
            self._open_next()
        self._close_current()
        names = [f"train-{i:05d}-of-{len(self.paths):05d}.parquet" for i in range(len(self.paths))]
        for path, name in zip(self.paths, names, strict=True):
            path.rename(self.directory / name)
        return names


def write_dataset(
    out: Path, sources: list[tuple[str, str | None, Path, np.ndarray]], shard_max_bytes: int
) -> list[str]:
    """Writes the kept rows of each (repo_id, commit, cache path, keep mask), in order, into fresh shards and swaps
    them in for `out/data`. Returns the shard file names."""
    staging = out / STATE_DIR / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    writer = _ShardWriter(staging, shard_max_bytes)
    for repo_id, commit, cache_path, keep in sources:
        for table in _kept_tables(cache_path, keep):
            rows = table.num_rows
            writer.write(
                pa.table(
                    {
                        "repo_id": pa.array([repo_id] * rows, pa.string()),
                        "file_path": table.column("file_path"),
                        "content": table.column("content"),
                        "language": table.column("language"),
                        "num_bytes": table.column("num_bytes"),
                        "sha256": table.column("sha256"),
                        "commit": pa.array([commit] * rows, pa.string()),
                    },
                    schema=DATASET_SCHEMA,
                )
            )
    names = writer.finish()
    _swap_in(out, staging)
    return names


def _kept_tables(cache_path: Path, keep: np.ndarray) -> Iterator[pa.Table]:
    columns = ["file_path", "content", "language", "num_bytes", "sha256"]
    offset = 0
    for batch in pq.ParquetFile(cache_path).iter_batches(batch_size=_ROW_GROUP_ROWS, columns=columns):
        mask = keep[offset : offset + batch.num_rows]
        offset += batch.num_rows
        if mask.any():
            yield pa.Table.from_batches([batch]).filter(pa.array(mask))


def _swap_in(out: Path, staging: Path) -> None:
    data, previous = out / DATA_DIR, out / STATE_DIR / "previous-data"
    shutil.rmtree(previous, ignore_errors=True)
    if data.exists():
        data.rename(previous)
    staging.rename(data)
    shutil.rmtree(previous, ignore_errors=True)


def recover_interrupted_swap(out: Path) -> None:
    """Puts the previous shards back if a run was killed between the two renames of the swap."""
    data, previous = out / DATA_DIR, out / STATE_DIR / "previous-data"
    if not data.exists() and previous.exists():
        previous.rename(data)


def load_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST_FILE
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return manifest if manifest.get("format") == MANIFEST_FORMAT else None


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    write_atomic(out / MANIFEST_FILE, json.dumps({"format": MANIFEST_FORMAT, **manifest}, indent=2) + "\n")


def write_dataset_card(out: Path, files: int, sources: list[str]) -> None:
    """A README.md that tells the Hub (and people) how the dataset is laid out."""
    listed = "\n".join(f"- `{s}`" for s in sources)
    card = f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
---
# Code dataset collected with personal-copilot

{files} files from {len(sources)} repositories, filtered (code only, no binary/minified/generated files),
secrets redacted and duplicates removed by `pcopilot collect`. Columns: `repo_id`, `file_path`, `content`,
`language`, `num_bytes`, `sha256`, `commit`. Per-source details are in `manifest.json`.

{listed}
"""
    write_atomic(out / "README.md", card)
