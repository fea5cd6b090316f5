"""`pcopilot collect`: sources -> filtered, redacted, deduplicated Parquet dataset (see `store` for the layout).

    pcopilot collect ./service https://github.com/org/lib.git github:my-org --top_k 10 --output data/

Python: `run_collect(CollectConfig(sources=[...], output=Path("data")))`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np

from personal_copilot.collect.config import CollectConfig
from personal_copilot.collect.dedup import find_duplicates
from personal_copilot.collect.filters import path_drop_reason
from personal_copilot.collect.process import BatchResult, ProcessSettings, process_batch, warm_up
from personal_copilot.collect.report import CollectReport, SourceReport
from personal_copilot.collect.sources import (
    FailedSource,
    ReadySource,
    Source,
    expand_sources,
    materialize,
    unique_repo_ids,
)
from personal_copilot.collect.store import (
    CacheHeader,
    dataset_fingerprint,
    has_shards,
    load_manifest,
    read_cache_header,
    read_fingerprints,
    recover_interrupted_run,
    remove_stale_caches,
    source_cache_path,
    write_dataset,
    write_dataset_card,
    write_manifest,
    write_source_cache,
)
from personal_copilot.configs import check_output_owner, to_plain, write_report, write_run_config
from personal_copilot.console import progress_bar, stderr
from personal_copilot.errors import PcopilotError

PROCESSING_VERSION = 3
"""Bumped when filtering, decoding, redaction or fingerprinting changes, so that cached sources are processed again."""
_BATCH_FILES = 64
DROPPED_FILES_LISTED = 200
"""Paths the manifest lists per source and drop reason (a repository's thousands of images stay a count)."""
_PARALLEL_MIN_FILES = 256


@dataclass
class _Entry:
    """A source's line in the manifest (and its report)."""

    report: SourceReport
    location: str
    remote: bool
    fingerprint: str | None = None
    cache: Path | None = None
    content: str | None = None
    """The cache's row digest (see `CacheHeader.content`)."""
    dropped_files: dict[str, list[str]] = field(default_factory=dict)

    def to_manifest(self, out: Path) -> dict:
        report = to_plain(self.report)
        cache = str(self.cache.relative_to(out)) if self.cache else None
        return {
            **report,
            "location": self.location,
            "remote": self.remote,
            "fingerprint": self.fingerprint,
            "cache": cache,
            "dropped_files": self.dropped_files,
        }


@dataclass
class _Pending:
    """A source whose files are being processed."""

    ready: ReadySource
    result: BatchResult = field(default_factory=BatchResult)
    batches_left: int = 0


def _settings_key(config: CollectConfig) -> str:
    """16 hex digits naming every setting that changes a source cache's rows: filters, decoding and redaction (with
    the detector library's version), and the MinHash parameters. Dedup's threshold is applied later, on every run."""
    from importlib.metadata import version

    settings = {
        "version": PROCESSING_VERSION,
        "filters": to_plain(config.filters),
        "redact": config.redact_secrets,
        "detect_secrets": version("detect-secrets") if config.redact_secrets else None,
        "minhash": [config.dedup.near, config.dedup.num_perm, config.dedup.shingle_size],
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _previous_entries(out: Path) -> dict[str, dict]:
    """The last run's manifest entries by repo_id; of a name given twice, the source that was collected."""
    manifest = load_manifest(out)
    entries = [] if manifest is None else manifest.get("sources", [])
    return {entry["repo_id"]: entry for entry in sorted(entries, key=lambda entry: entry.get("cache") is not None)}


def _unique_sources(sources: list[Source], failed: list[FailedSource], previous: dict[str, dict]) -> list[Source]:
    earlier = {entry["location"]: repo_id for repo_id, entry in previous.items()}
    by_repo_id: dict[str, Source] = {}
    for source in unique_repo_ids(sources, earlier):
        first = by_repo_id.setdefault(source.repo_id, source)
        if first.location != source.location:
            message = (
                f"repo_id {source.repo_id!r} is already taken by {first.spec}; "
                f"give this one its own with NAME=SOURCE (e.g. other-{source.repo_id.split('/')[-1]}={source.spec})"
            )
            failed.append(FailedSource(source, message))
    return list(by_repo_id.values())


def _materialize_all(sources: list[Source], config: CollectConfig) -> list[ReadySource | FailedSource]:
    results: list[ReadySource | FailedSource] = []
    with (
        progress_bar("fetching repositories", len(sources)) as advance,
        ThreadPoolExecutor(max_workers=config.workers) as pool,
    ):
        for result in pool.map(lambda s: materialize(s, config), sources):
            results.append(result)
            advance(1)
    return results


def _plan_batches(pending: list[_Pending], config: CollectConfig) -> list[tuple[int, Path, list[str]]]:
    """Drops files by path (counted in each source's result) and splits the rest into (source index, root, paths)."""
    batches = []
    for index, item in enumerate(pending):
        candidates = []
        for path in item.ready.files:
            reason = path_drop_reason(path, config.filters)
            if reason in (None, "not_code", "lock_file") and os.path.islink(item.ready.root / path):
                reason = "symlink"  # counted as such whatever its name; the worker never follows it either
            if reason is None:
                candidates.append(path)
            else:
                item.result.dropped[reason] += 1
                item.result.dropped_files.append((reason, path))
        chunks = [candidates[i : i + _BATCH_FILES] for i in range(0, len(candidates), _BATCH_FILES)]
        item.batches_left = len(chunks)
        batches += [(index, item.ready.root, chunk) for chunk in chunks]
    return batches


def _process_sources(pending: list[_Pending], config: CollectConfig, out: Path, settings_key: str) -> list[_Entry]:
    """Runs every candidate file of the pending sources through `process_batch` (in worker processes when it pays).
    A source is written to its cache as soon as its last batch is in, so memory holds few sources' files at once."""
    settings = ProcessSettings(config.filters, config.dedup, config.redact_secrets)
    batches = _plan_batches(pending, config)
    entries = [_finish_source(item, out, settings_key) for item in pending if item.batches_left == 0]

    def merge(index: int, part: BatchResult) -> None:
        item = pending[index]
        item.result.records += part.records
        item.result.dropped.update(part.dropped)
        item.result.dropped_files += part.dropped_files
        item.result.secrets.update(part.secrets)
        item.batches_left -= 1
        if item.batches_left == 0:
            entries.append(_finish_source(item, out, settings_key))

    total = sum(len(paths) for _, _, paths in batches)
    if config.workers > 1 and total >= _PARALLEL_MIN_FILES:
        warm_up(settings)  # forked workers inherit the imported detectors and MinHash permutations
        with ProcessPoolExecutor(config.workers, mp_context=_worker_context()) as pool:
            # Submitting starts the workers: before the progress bar's thread exists, so nothing forks a lock held.
            futures = [(i, len(p), pool.submit(process_batch, root, p, settings)) for i, root, p in batches]
            with progress_bar("reading files", total) as advance:
                for index, count, future in futures:
                    merge(index, future.result())
                    advance(count)
    else:
        with progress_bar("reading files", total) as advance:
            for index, root, paths in batches:
                merge(index, process_batch(root, paths, settings))
                advance(len(paths))
    return entries


def _worker_context() -> BaseContext:
    """fork on Linux: workers start at once with what this process imported, and the caller's `__main__` is never
    re-imported (scripts and notebooks need no `if __name__ == "__main__"` guard). spawn elsewhere (fork is unsafe
    on macOS and absent on Windows)."""
    return get_context("fork" if sys.platform == "linux" else "spawn")


def _finish_source(item: _Pending, out: Path, settings_key: str) -> _Entry:
    ready, source = item.ready, item.ready.source
    cache = source_cache_path(out, source.repo_id, settings_key)
    header = {
        "repo_id": source.repo_id,
        "source": source.spec,
        "location": source.location,
        "settings": settings_key,
        "fingerprint": ready.fingerprint,
        "commit": ready.commit,
        "files_seen": len(ready.files),
        "dropped": dict(sorted(item.result.dropped.items())),
        "secrets": dict(sorted(item.result.secrets.items())),
        "dropped_files": _listed_by_reason(item.result.dropped_files),
    }
    written = write_source_cache(cache, header, item.result.records)
    item.result.records = []
    return _entry_from_cache(written, cache, source, "collected", remote=source.remote)


def _listed_by_reason(dropped: list[tuple[str, str]]) -> dict[str, list[str]]:
    """{reason: its first DROPPED_FILES_LISTED paths, sorted}; the counts say how many there were in all."""
    listed: dict[str, list[str]] = {}
    for reason, path in sorted(dropped):
        paths = listed.setdefault(reason, [])
        if len(paths) < DROPPED_FILES_LISTED:
            paths.append(path)
    return listed


def _entry_from_cache(
    header: CacheHeader, cache: Path, source: Source | None, status: str, remote: bool, error: str | None = None
) -> _Entry:
    """A source's entry whose report is the cache's own: the counts always describe the rows that are written."""
    report = SourceReport(
        repo_id=header.repo_id,
        source=source.spec if source else header.source,
        status=status,
        commit=header.commit,
        files_seen=header.files_seen,
        dropped=header.dropped,
        secrets=header.secrets,
        error=error,
    )
    return _Entry(report, header.location, remote, header.fingerprint, cache, header.content, header.dropped_files)


def _cached(out: Path, repo_id: str, location: str, settings_key: str) -> tuple[CacheHeader, Path] | None:
    """The valid cache of this source (same repo_id, location and settings), if an earlier run left one."""
    path = source_cache_path(out, repo_id, settings_key)
    header = read_cache_header(path, settings_key, repo_id)
    return (header, path) if header is not None and header.location == location else None


def _collect_sources(config: CollectConfig, out: Path, previous: dict[str, dict], settings_key: str) -> list[_Entry]:
    sources, failed = expand_sources(config.sources, config)
    sources = _unique_sources(sources, failed, previous)
    named = {source.repo_id for source in sources} | {f.source.repo_id for f in failed}
    entries: list[_Entry] = []
    for repo_id, old in previous.items():
        if repo_id in named or config.prune:
            continue
        cached = _cached(out, repo_id, old["location"], settings_key)
        if cached:
            entries.append(_entry_from_cache(*cached, None, "carried", remote=old["remote"]))
        else:
            sources.append(Source(old["source"], repo_id, old["location"], old["remote"]))
    pending: list[_Pending] = []
    for result in _materialize_all(sources, config) + failed:
        source = result.source
        cached = _cached(out, source.repo_id, source.location, settings_key)
        if isinstance(result, FailedSource):
            if cached:
                entries.append(_entry_from_cache(*cached, source, "failed", source.remote, result.error))
            else:
                report = SourceReport(source.repo_id, source.spec, "failed", error=result.error)
                entries.append(_Entry(report, source.location, source.remote))
        elif cached and cached[0].fingerprint == result.fingerprint:
            # A cache left by an interrupted run is reused, but the source is new to the dataset: "collected".
            unchanged = previous.get(source.repo_id, {}).get("fingerprint") == result.fingerprint
            status = "unchanged" if unchanged else "collected"
            entries.append(_entry_from_cache(*cached, source, status, source.remote))
        else:
            pending.append(_Pending(result))
    entries += _process_sources(pending, config, out, settings_key)
    return sorted(entries, key=lambda e: e.report.repo_id)


def _deduplicate(entries: list[_Entry], config: CollectConfig) -> list[np.ndarray]:
    """Keep masks, one per entry with data, in entry order; fills each report's duplicate and kept counts."""
    tables = [read_fingerprints(e.cache) if e.cache else None for e in entries]
    hashes = [h for t in tables if t is not None for h in t.column("norm_hash").to_pylist()]
    signatures = [s for t in tables if t is not None for s in t.column("minhash").to_pylist()]
    duplicates = find_duplicates(hashes, signatures, config.dedup)
    masks, offset = [], 0
    for entry, table in zip(entries, tables, strict=True):
        rows = 0 if table is None else table.num_rows
        indices = range(offset, offset + rows)
        keep = np.array([i not in duplicates.exact and i not in duplicates.near for i in indices], dtype=bool)
        entry.report.duplicates_exact = sum(i in duplicates.exact for i in indices)
        entry.report.duplicates_near = sum(i in duplicates.near for i in indices)
        entry.report.files_kept = int(keep.sum())
        entry.report.bytes_kept = 0 if table is None else int(table.column("num_bytes").to_numpy()[keep].sum())
        masks.append(keep)
        offset += rows
    return masks


def _dedup_key(entries: list[_Entry], config: CollectConfig) -> str:
    """Changes whenever deduplication could decide differently: the cached rows of every source, the dedup settings
    and the shard size."""
    inputs = [(e.report.repo_id, e.report.commit, e.content) for e in entries if e.cache]
    plain = json.dumps([to_plain(config.dedup), config.shard_max_bytes, inputs], sort_keys=True)
    return hashlib.sha256(plain.encode()).hexdigest()[:16]


def _reuse_dedup_counts(entries: list[_Entry], previous: dict[str, dict]) -> None:
    for entry in entries:
        if entry.cache:
            old = previous[entry.report.repo_id]
            for name in ("duplicates_exact", "duplicates_near", "files_kept", "bytes_kept"):
                setattr(entry.report, name, old[name])


def _push_to_hub(out: Path, repo_id: str, private: bool) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        folder_path=str(out),
        repo_id=repo_id,
        repo_type="dataset",
        allow_patterns=["data/*.parquet", "README.md", "manifest.json", "report.json"],
        delete_patterns=["data/*.parquet"],
        commit_message="pcopilot collect",
    )
    return str(url)


def run_collect(config: CollectConfig) -> CollectReport:
    """Collects the sources into `config.output` and returns the report (also written as `report.json`)."""
    start = time.perf_counter()
    out = config.output
    check_output_owner(out, "collect")  # a training run given as --output keeps its record
    out.mkdir(parents=True, exist_ok=True)
    recover_interrupted_run(out)
    settings_key = _settings_key(config)
    manifest = load_manifest(out) or {}
    previous = _previous_entries(out)
    if not config.sources and not previous:
        raise PcopilotError("no sources: give folders, git URLs or github:ORG (e.g. `pcopilot collect ./repo`)")
    entries = _collect_sources(config, out, previous, settings_key)
    dedup_key = _dedup_key(entries, config)
    if manifest.get("dedup") == dedup_key and has_shards(out, manifest.get("shards", [])):
        # Nothing that decides the rows changed: the counts are the last run's, and no shard is written.
        _reuse_dedup_counts(entries, previous)
        fingerprint, shards = manifest["dataset"], manifest["shards"]
    else:
        masks = _deduplicate(entries, config)
        with_data = [(e, m) for e, m in zip(entries, masks, strict=True) if e.cache]
        fingerprint = dataset_fingerprint(
            [(e.report.repo_id, e.report.commit, e.content, m) for e, m in with_data], config.shard_max_bytes
        )
        shards = manifest.get("shards", [])
        if manifest.get("dataset") != fingerprint or not has_shards(out, shards):
            shards = write_dataset(
                out,
                [(e.report.repo_id, e.report.commit, e.cache, m) for e, m in with_data],
                config.shard_max_bytes,
                fingerprint,
            )
    manifest = {
        "settings": settings_key,
        "dedup": dedup_key,
        "dataset": fingerprint,
        "shards": shards,
        "sources": [e.to_manifest(out) for e in entries],
    }
    write_manifest(out, manifest)
    remove_stale_caches(out, {e.cache for e in entries if e.cache})
    reports = [e.report for e in entries]
    write_dataset_card(out, sum(r.files_kept for r in reports), [r.repo_id for r in reports if r.files_kept], shards)
    dropped: Counter[str] = Counter()
    secrets: Counter[str] = Counter()
    for r in reports:
        dropped.update(r.dropped)
        secrets.update(r.secrets)
    report = CollectReport(
        output=str(out),
        sources=reports,
        files_seen=sum(r.files_seen for r in reports),
        files_kept=sum(r.files_kept for r in reports),
        bytes_kept=sum(r.bytes_kept for r in reports),
        dropped=dict(sorted(dropped.items())),
        duplicates_exact=sum(r.duplicates_exact for r in reports),
        duplicates_near=sum(r.duplicates_near for r in reports),
        secrets=dict(sorted(secrets.items())),
        shards=shards,
        seconds=round(time.perf_counter() - start, 3),
    )
    write_run_config(out, "collect", config)
    write_report(out, report)
    if config.push_to_hub:
        stderr.print(f"uploading {out} to the Hub dataset {config.push_to_hub} …")
        report.pushed_to = _push_to_hub(out, config.push_to_hub, config.private)
        write_report(out, report)
    return report
