"""Reading and judging files, in worker processes: filter, redact secrets, fingerprint for deduplication."""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from personal_copilot.collect.config import DedupConfig, FilterConfig
from personal_copilot.collect.dedup import minhash_signature, normalized_hash
from personal_copilot.collect.filters import CodeFile, filter_content
from personal_copilot.collect.secrets import redact_secrets


@dataclass(frozen=True)
class ProcessSettings:
    """What a worker needs to judge files (picklable)."""

    filters: FilterConfig
    dedup: DedupConfig
    redact_secrets: bool


@dataclass
class FileRecord:
    """A kept file, before deduplication."""

    file_path: str
    content: str
    language: str
    num_bytes: int
    sha256: str
    norm_hash: str
    minhash: bytes


@dataclass
class BatchResult:
    records: list[FileRecord] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    dropped_files: list[tuple[str, str]] = field(default_factory=list)
    """(reason, path) of each dropped file."""
    secrets: Counter[str] = field(default_factory=Counter)


def _read_inside(root: Path, relative: str, max_bytes: int) -> bytes | str:
    """The file's bytes, or a drop reason. Symbolic links are never followed, and neither is a path whose parent
    directories lead outside `root`."""
    path = root / relative
    try:
        info = os.lstat(path)
    except OSError:
        return "unreadable"
    if stat.S_ISLNK(info.st_mode):
        return "symlink"
    if not stat.S_ISREG(info.st_mode):
        return "not_regular"
    if not os.path.realpath(path).startswith(os.path.realpath(root) + os.sep):
        return "symlink"
    if info.st_size > max_bytes:
        return "too_large"
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError:
        return "unreadable"


def warm_up(settings: ProcessSettings) -> None:
    """Imports the secret detectors and builds the MinHash permutations once, so worker processes forked afterwards
    start ready."""
    redact_secrets("")
    if settings.dedup.near:
        minhash_signature("", settings.dedup)


def process_batch(root: Path, paths: list[str], settings: ProcessSettings) -> BatchResult:
    """Reads and judges `paths` (relative to `root`); one bad file only adds to a drop count."""
    result = BatchResult()
    for relative in paths:
        data = _read_inside(root, relative, settings.filters.max_file_bytes)
        verdict = data if isinstance(data, str) else filter_content(relative, data, settings.filters)
        if not isinstance(verdict, CodeFile):
            result.dropped[verdict] += 1
            result.dropped_files.append((verdict, relative))
            continue
        content = verdict.content
        if settings.redact_secrets:
            content, found = redact_secrets(content)
            result.secrets.update(found)
        encoded = content.encode("utf-8")
        result.records.append(
            FileRecord(
                file_path=relative,
                content=content,
                language=verdict.language,
                num_bytes=len(encoded),
                sha256=hashlib.sha256(encoded).hexdigest(),
                norm_hash=normalized_hash(content),
                minhash=minhash_signature(content, settings.dedup) if settings.dedup.near else b"",
            )
        )
    return result
