"""The dataset directory on disk.

```
DIR/data/train-00000-of-00002-<fingerprint>.parquet   the rows (repo_id, file_path, content, language, num_bytes,
                                                      sha256, commit); the fingerprint changes with the content
DIR/manifest.json                       per source: commit, fingerprint, files kept / dropped by reason (and which)
DIR/report.json, DIR/pcopilot_config.yaml, DIR/README.md (dataset card, lists the shard files)
DIR/.pcopilot/sources/*.parquet         per source and settings, its filtered and redacted files before deduplication
```
The per-source caches let a re-run skip unchanged sources yet deduplicate across all of them again. Each cache is
named by its source and by every setting that changes its content, written atomically, and carries in its Parquet
metadata what it was made from and its own report (files seen, dropped, secrets redacted): a cache is only reused
when that header matches the run, and its report always describes its rows. New shards are written aside and
swapped in at the end, so a run killed half way leaves the previous dataset as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
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


CACHE_FORMAT = 1
_CACHE_HEADER_KEY = b"pcopilot"


@dataclass(frozen=True)
class CacheHeader:
    """What a source cache was made from, and its report; stored in the cache's Parquet metadata."""

    repo_id: str
    source: str
    location: str
    settings: str
    """`settings_key` of the run that wrote it: every setting that changes the rows."""
    fingerprint: str
    """The source's fingerprint (commit or files) when it was read."""
    commit: str | None
    files_seen: int
    dropped: dict[str, int]
    secrets: dict[str, int]
    rows: int
    content: str
    """SHA-256 over the rows' (file_path, sha256): changes whenever the rows do."""
    dropped_files: dict[str, list[str]] = field(default_factory=dict)
    """Per drop reason, the first paths dropped for it (see `collect.run.DROPPED_FILES_LISTED`)."""


def source_cache_path(out: Path, repo_id: str, settings: str) -> Path:
    """Where a source's pre-dedup files are kept for the given settings (name readable, unique per repo_id)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", repo_id)[:80]
    repo_hash = hashlib.sha256(repo_id.encode()).hexdigest()[:10]
    return out / STATE_DIR / "sources" / f"{readable}-{repo_hash}-{settings}.parquet"


def _rows_digest(records: list[FileRecord]) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(f"{record.file_path}\0{record.sha256}\n".encode())
    return digest.hexdigest()


def write_source_cache(path: Path, header: dict[str, Any], records: list[FileRecord]) -> CacheHeader:
    """Writes a source's records sorted by path, with `header` (CacheHeader's fields but rows and content) in the
    file's metadata: written aside and renamed, so a reader finds the whole file or none (no fsync: it guards
    against power loss, not interruptions, and costs seconds on a busy disk)."""
    records = sorted(records, key=lambda r: r.file_path)
    complete = CacheHeader(**header, rows=len(records), content=_rows_digest(records))
    metadata = {_CACHE_HEADER_KEY: json.dumps({"format": CACHE_FORMAT, **asdict(complete)}).encode()}
    table = pa.Table.from_pylist([asdict(r) for r in records], schema=CACHE_SCHEMA.with_metadata(metadata))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial, compression="zstd", row_group_size=_ROW_GROUP_ROWS)
    os.replace(partial, path)
    return complete


def read_cache_header(path: Path, settings: str, repo_id: str) -> CacheHeader | None:
    """The header of a source cache written with these settings for this repo_id, or None when the file is
    missing, unreadable, truncated, of another format, or made for something else: it is then rebuilt, never
    trusted."""
    try:
        metadata = pq.read_metadata(path)
        fields = json.loads(metadata.metadata[_CACHE_HEADER_KEY])
        if fields.pop("format") != CACHE_FORMAT:
            return None
        header = CacheHeader(**fields)
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None
    if header.settings != settings or header.repo_id != repo_id or header.rows != metadata.num_rows:
        return None
    return header


def remove_stale_caches(out: Path, keep: set[Path]) -> None:
    """Deletes the source caches (and leftovers of interrupted writes) that the dataset no longer uses, e.g. those
    of other settings: they may hold unredacted text."""
    directory = out / STATE_DIR / "sources"
    if directory.is_dir():
        for path in directory.iterdir():
            if path not in keep:
                path.unlink(missing_ok=True)


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

    def finish(self, fingerprint: str) -> list[str]:
        """Closes the last shard and renames all to `train-XXXXX-of-YYYYY-<fingerprint>.parquet` (one empty shard if
        no rows)."""
        if not self.paths:
            self._open_next()
        self._close_current()
        names = [f"train-{i:05d}-of-{len(self.paths):05d}-{fingerprint}.parquet" for i in range(len(self.paths))]
        for path, name in zip(self.paths, names, strict=True):
            path.rename(self.directory / name)
        return names


def dataset_fingerprint(sources: list[tuple[str, str | None, str, np.ndarray]], shard_max_bytes: int) -> str:
    """16 hex digits that change whenever the rows (or their split into shards) would: from each source's
    (repo_id, commit, cache content digest, keep mask), in order."""
    digest = hashlib.sha256(f"{MANIFEST_FORMAT}\0{DATASET_SCHEMA}\0{shard_max_bytes}\n".encode())
    for repo_id, commit, content, keep in sources:
        digest.update(f"{repo_id}\0{commit}\0{content}\0".encode())
        digest.update(np.packbits(keep).tobytes() + len(keep).to_bytes(8, "little"))
    return digest.hexdigest()[:16]


def has_shards(out: Path, names: list[str]) -> bool:
    """True when `out/data` holds exactly these shard files."""
    data = out / DATA_DIR
    return bool(names) and data.is_dir() and sorted(p.name for p in data.iterdir()) == sorted(names)


def write_dataset(
    out: Path, sources: list[tuple[str, str | None, Path, np.ndarray]], shard_max_bytes: int, fingerprint: str
) -> list[str]:
    """Writes the kept rows of each (repo_id, commit, cache path, keep mask), in order, into fresh shards named
    with the dataset's `fingerprint` and swaps them in for `out/data`. Returns the shard file names."""
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
    names = writer.finish(fingerprint)
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


def recover_interrupted_run(out: Path) -> None:
    """Puts the previous shards back if a run was killed between the two renames of the swap, and deletes what a
    killed run left aside (staged shards, half-written caches: they may hold text redacted otherwise, or not)."""
    data, previous = out / DATA_DIR, out / STATE_DIR / "previous-data"
    if not data.exists() and previous.exists():
        previous.rename(data)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(out / STATE_DIR / "staging", ignore_errors=True)
    sources = out / STATE_DIR / "sources"
    for partial in sources.glob("*.partial") if sources.is_dir() else []:
        partial.unlink(missing_ok=True)


def load_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT else None


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    write_atomic(out / MANIFEST_FILE, json.dumps({"format": MANIFEST_FORMAT, **manifest}, indent=2) + "\n")


def write_dataset_card(out: Path, files: int, sources: list[str], shards: list[str]) -> None:
    """A README.md that tells the Hub (and people) how the dataset is laid out. It names every shard file: the
    `datasets` library keys its cache on these names (not on the files' content), and they carry the dataset's
    fingerprint, so `load_dataset(DIR)` never serves the rows of an earlier collect or of another folder."""
    listed = "\n".join(f"- `{s}`" for s in sources)
    paths = "\n".join(f"    - {DATA_DIR}/{name}" for name in shards)
    card = f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path:
{paths}
---
# Code dataset collected with personal-copilot

{files} files from {len(sources)} repositories, filtered (code only, no binary/minified/generated files),
secrets redacted and duplicates removed by `pcopilot collect`. Columns: `repo_id`, `file_path`, `content`,
`language`, `num_bytes`, `sha256`, `commit`. Per-source details are in `manifest.json`.

{listed}
"""
    path = out / "README.md"
    if not path.is_file() or path.read_text(encoding="utf-8") != card:
        write_atomic(path, card)
