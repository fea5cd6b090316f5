"""Settings of `pcopilot collect`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "personal_copilot" / "repos"


@dataclass
class FilterConfig:
    """Which files are kept: allowlist, globs, size and minified/generated heuristics."""

    include: list[str] | str = field(default_factory=list)
    """Globs (on the repo-relative path, `*` crosses `/`) of files to keep even if their extension is not code."""
    exclude: list[str] | str = field(default_factory=list)
    """Globs of files to drop (e.g. `tests/fixtures/*`, `*.yaml`)."""
    max_file_bytes: int = 1_000_000
    """Files larger than this many bytes are dropped as `too_large`."""
    max_line_length: int = 1000
    """A file with a longer line is dropped as `minified`."""
    max_mean_line_length: float = 100.0
    """A file whose mean line length is larger is dropped as `minified`."""
    min_alnum_fraction: float = 0.25
    """A file with a smaller share of alphanumeric characters is dropped as `minified`."""

    def __post_init__(self) -> None:
        self.include = [self.include] if isinstance(self.include, str) else self.include
        self.exclude = [self.exclude] if isinstance(self.exclude, str) else self.exclude
        if self.max_file_bytes <= 0:
            raise ValueError(f"--filters.max_file_bytes must be positive, got {self.max_file_bytes}")
        if not 0.0 <= self.min_alnum_fraction <= 1.0:
            raise ValueError(f"--filters.min_alnum_fraction must be in [0, 1], got {self.min_alnum_fraction}")


@dataclass
class DedupConfig:
    """Exact and near-duplicate removal across all sources."""

    exact: bool = True
    """Drop files whose normalized content (line endings, trailing spaces) equals an earlier file's."""
    near: bool = True
    """Drop near duplicates found with MinHash LSH over token shingles."""
    threshold: float = 0.85
    """Estimated Jaccard similarity above which two files are near duplicates."""
    num_perm: int = 128
    """MinHash permutations (more: a finer estimate, slower)."""
    shingle_size: int = 5
    """Tokens per shingle."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"--dedup.threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 16 or self.shingle_size < 1:
            raise ValueError("--dedup.num_perm must be >= 16 and --dedup.shingle_size >= 1")


@dataclass
class CollectConfig:
    """Collect code from repositories into a Parquet dataset: `DIR/data/train-*.parquet`, `manifest.json`,
    `report.json`. Re-running into the same DIR is incremental: unchanged sources are not processed again.

    Example: pcopilot collect ./my-repo https://github.com/org/repo.git github:my-org --top_k 10 --output data/
    """

    sources: list[str] = field(default_factory=list)
    """Local folders (work tree or plain), git URLs (https://, ssh://, git@, file://, bare repo path), github:ORG."""
    output: Path = Path("pcopilot_data")
    """Dataset directory (created; an existing collect output is updated incrementally)."""
    workers: int = max(1, min(8, os.cpu_count() or 1))
    """Parallel clones and file-processing processes."""
    cache_dir: Path = field(default_factory=_default_cache_dir)
    """Where remote repositories are cloned (shallow); later runs fetch into the same clones."""
    top_k: int | None = None
    """For github:ORG, keep only the N most-starred repositories."""
    include_forks: bool = False
    """For github:ORG, also collect forks."""
    include_archived: bool = False
    """For github:ORG, also collect archived repositories."""
    github_api_url: str = "https://api.github.com"
    """GitHub REST API root (for GitHub Enterprise); the token comes from the GITHUB_TOKEN environment variable."""
    clone_timeout: int = 900
    """Seconds before a clone or fetch is abandoned (the source is then reported as failed)."""
    redact_secrets: bool = True
    """Replace detected secrets with typed placeholders like <SECRET:aws_access_key> before writing."""
    prune: bool = False
    """Drop sources collected by earlier runs into --output but not named in this one (default: keep them)."""
    shard_max_bytes: int = 256 * 1024 * 1024
    """Upper bound of content bytes per Parquet shard."""
    push_to_hub: str | None = None
    """Upload the finished dataset to this Hugging Face Hub dataset repo id (needs a token: `hf auth login`)."""
    private: bool = True
    """With --push_to_hub, create the Hub repository as private."""
    filters: FilterConfig = field(default_factory=FilterConfig)
    """What is kept."""
    dedup: DedupConfig = field(default_factory=DedupConfig)
    """Duplicate removal."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        self.cache_dir = Path(self.cache_dir)
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"--top_k must be >= 1, got {self.top_k}")
        if self.shard_max_bytes < 1024:
            raise ValueError(f"--shard_max_bytes must be at least 1024, got {self.shard_max_bytes}")
