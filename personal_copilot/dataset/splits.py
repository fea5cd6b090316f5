"""The train / eval split: held out by repository, so evaluation measures code the model has not seen from a
repository it has not seen; by file when the dataset has a single repository.

The held-out items are the `round(eval_fraction * n)` (at least 1, and never all) repositories (or files) with the
smallest hash of (seed, name): deterministic, independent of the order rows are read in, and written to the report
so a later stage can check what was held out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

Side = Literal["train", "eval"]


@dataclass(frozen=True)
class DatasetSplit:
    """Which documents are held out for evaluation."""

    by: Literal["repository", "file"]
    eval_fraction: float
    seed: int
    eval_repos: tuple[str, ...] = ()
    """Held-out repositories (split by repository)."""
    eval_files: tuple[str, ...] = ()
    """Held-out file paths of the single repository (split by file)."""
    train_documents: int = 0
    eval_documents: int = 0

    @cached_property
    def _held_out(self) -> frozenset[str]:
        return frozenset(self.eval_files if self.by == "file" else self.eval_repos)

    def side(self, repo_id: str, file_path: str) -> Side:
        """Whether a document is trained on or held out."""
        return "eval" if (file_path if self.by == "file" else repo_id) in self._held_out else "train"


def _rank_key(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{name}".encode()).digest()


def _held_out(names: set[str], eval_fraction: float, seed: int) -> tuple[str, ...]:
    if eval_fraction == 0 or len(names) < 2:
        return ()
    count = min(len(names) - 1, max(1, round(eval_fraction * len(names))))
    return tuple(sorted(sorted(names, key=lambda name: _rank_key(seed, name))[:count]))


def split_by_repository(documents: Iterable[tuple[str, str]], eval_fraction: float, seed: int) -> DatasetSplit:
    """Splits (repo_id, file_path) pairs by repository, or by file when there is one repository."""
    documents = list(documents)
    repos = {repo_id for repo_id, _ in documents}
    if len(repos) == 1:
        files = _held_out({path for _, path in documents}, eval_fraction, seed)
        split = DatasetSplit("file", eval_fraction, seed, eval_files=files)
    else:
        split = DatasetSplit("repository", eval_fraction, seed, eval_repos=_held_out(repos, eval_fraction, seed))
    held = sum(split.side(repo_id, path) == "eval" for repo_id, path in documents)
    return replace(split, train_documents=len(documents) - held, eval_documents=held)
