"""The train / eval split of a collected dataset: which documents are held out for evaluation.

Two ways to hold out (`--split_by`):
- `file`: within every repository, the files whose hash of (seed, repository, path) falls below `eval_fraction`, so
  that every repository is both trained on and evaluated. A file's side depends only on the seed, the fraction and its
  own name: adding files never moves another one across. A repository of two or more files keeps at least one file on
  each side (the file nearest the line crosses it when the hashes would put them all on one side); a repository of one
  file is trained on only.
- `repository`: the `round(eval_fraction * n)` repositories (at least one, never all) with the smallest hash of
  (seed, name), so that evaluation measures code of repositories the model never saw. With few repositories this holds
  out a large, arbitrary share of the code (one of two repositories: half of it, or more).
- `auto` (the default): by repository from `MIN_REPOSITORIES_FOR_REPOSITORY_SPLIT` repositories on, else by file.

Files are held out one by one rather than by directory: directories differ so much in size that a fraction of them
holds out an unpredictable share of the bytes. The split is written to the reports and to a training run's record, so
later stages evaluate on exactly the files the run did not train on.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

from personal_copilot.errors import PcopilotError

Side = Literal["train", "eval"]
SplitBy = Literal["auto", "repository", "file"]

MIN_REPOSITORIES_FOR_REPOSITORY_SPLIT = 10
"""`--split_by auto` holds out whole repositories from this many repositories on (with 0.1, one of ten), else files."""
_LISTED_REPOSITORIES = 8


@dataclass(frozen=True)
class RepositoryShare:
    """One repository's files and bytes on each side of the split."""

    repo_id: str
    train_files: int
    eval_files: int
    train_bytes: int
    eval_bytes: int


@dataclass(frozen=True)
class DatasetSplit:
    """Which documents are held out for evaluation, and how much of each repository that is."""

    by: Literal["repository", "file"]
    eval_fraction: float
    seed: int
    eval_repos: tuple[str, ...] = ()
    """Held-out repositories (split by repository)."""
    eval_files: tuple[tuple[str, str], ...] = ()
    """Held-out (repo_id, file_path) pairs (split by file)."""
    train_documents: int = 0
    eval_documents: int = 0
    repositories: tuple[RepositoryShare, ...] = ()
    """Files and bytes on each side, per repository."""

    @cached_property
    def _held_out(self) -> frozenset[Any]:
        return frozenset(self.eval_files if self.by == "file" else self.eval_repos)

    def side(self, repo_id: str, file_path: str) -> Side:
        """Whether a document is trained on or held out."""
        return "eval" if ((repo_id, file_path) if self.by == "file" else repo_id) in self._held_out else "train"

    def counted(self, documents: Iterable[tuple[str, str, int]]) -> DatasetSplit:
        """This split with its document counts and per-repository shares measured on (repo_id, file_path, bytes)."""
        files: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for repo_id, file_path, size in documents:
            held = self.side(repo_id, file_path) == "eval"
            files[repo_id][held] += 1
            files[repo_id][2 + held] += size
        shares = tuple(RepositoryShare(repo, *files[repo]) for repo in sorted(files))
        return replace(
            self,
            train_documents=sum(r.train_files for r in shares),
            eval_documents=sum(r.eval_files for r in shares),
            repositories=shares,
        )

    def to_record(self) -> dict[str, Any]:
        """The split as a training run records it (`data_splits` of its pcopilot_config.yaml)."""
        return {
            "split_by": self.by,
            "eval_fraction": self.eval_fraction,
            "seed": self.seed,
            "eval_repos": list(self.eval_repos),
            "eval_files": [list(pair) for pair in self.eval_files],
            "train_documents": self.train_documents,
            "eval_documents": self.eval_documents,
            "repositories": [vars(share) for share in self.repositories],
        }

    @classmethod
    def from_record(cls, entry: dict[str, Any], eval_fraction: float = 0.0, seed: int = 0) -> DatasetSplit:
        """The split a run recorded with `to_record`; `eval_fraction` and `seed` stand in for records without them."""
        return cls(
            by=entry["split_by"],
            eval_fraction=entry.get("eval_fraction", eval_fraction),
            seed=entry.get("seed", seed),
            eval_repos=tuple(entry.get("eval_repos", ())),
            eval_files=tuple(tuple(pair) for pair in entry.get("eval_files", ())),
            train_documents=entry.get("train_documents", 0),
            eval_documents=entry.get("eval_documents", 0),
            repositories=tuple(RepositoryShare(**share) for share in entry.get("repositories", ())),
        )

    def summary_rows(self) -> list[tuple[str, str]]:
        """What is held out, for a summary table: a line overall, then one per repository (the first few)."""
        if self.eval_documents == 0:
            return [("held out", "nothing: every file is trained on")]
        files = self.train_documents + self.eval_documents
        total_bytes = sum(r.train_bytes + r.eval_bytes for r in self.repositories)
        held_bytes = sum(r.eval_bytes for r in self.repositories)
        overall = f"{self.eval_documents} of {files} files" + (
            f", {_percent(held_bytes, total_bytes)} of the bytes" if total_bytes else ""
        )
        if self.by == "repository":
            head = f"by repository: {len(self.eval_repos)} of {len(self.repositories)} repositories, {overall}"
        else:
            head = f"by file within each repository: {overall}"
        rows = [("held out", head)]
        for share in self.repositories[:_LISTED_REPOSITORIES]:
            rows.append((f"  {share.repo_id}", _describe_share(share, self.by)))
        if len(self.repositories) > _LISTED_REPOSITORIES:
            rows.append(("  …", f"{len(self.repositories) - _LISTED_REPOSITORIES} more repositories"))
        return rows


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _describe_share(share: RepositoryShare, by: str) -> str:
    files = share.train_files + share.eval_files
    size = share.train_bytes + share.eval_bytes
    if by == "repository":
        return f"{'held out' if share.eval_files else 'trained on'}: {files} files, {size:,} bytes"
    if share.eval_files == 0:
        return f"trained on only: {files} file{'s' if files != 1 else ''}, too few to hold one out"
    return f"{share.eval_files} of {files} files held out ({_percent(share.eval_bytes, size)} of its bytes)"


def _unit_interval(seed: int, *names: str) -> float:
    digest = hashlib.sha256("\x00".join((str(seed), *names)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _held_out_repositories(repos: set[str], eval_fraction: float, seed: int) -> tuple[str, ...]:
    if eval_fraction == 0 or len(repos) < 2:
        return ()
    count = min(len(repos) - 1, max(1, round(eval_fraction * len(repos))))
    return tuple(sorted(sorted(repos, key=lambda repo: _unit_interval(seed, repo))[:count]))


def _held_out_files(keys: Iterable[tuple[str, str]], eval_fraction: float, seed: int) -> tuple[tuple[str, str], ...]:
    if eval_fraction == 0:
        return ()
    per_repository: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for repo_id, file_path in keys:
        per_repository[repo_id].append((_unit_interval(seed, repo_id, file_path), file_path))
    held: list[tuple[str, str]] = []
    for repo_id, ranked in per_repository.items():
        if len(ranked) < 2:
            continue
        ranked.sort()
        count = sum(value < eval_fraction for value, _ in ranked)
        held += [(repo_id, path) for _, path in ranked[: min(len(ranked) - 1, max(1, count))]]
    return tuple(sorted(held))


def split_documents(
    documents: Iterable[tuple[str, str, int]], eval_fraction: float, seed: int, by: SplitBy = "auto"
) -> DatasetSplit:
    """Splits (repo_id, file_path, bytes) triples by repository or by file within each repository (see the module)."""
    documents = list(documents)
    repos = {repo_id for repo_id, _, _ in documents}
    if by == "auto":
        by = "repository" if len(repos) >= MIN_REPOSITORIES_FOR_REPOSITORY_SPLIT else "file"
    if by == "repository":
        if len(repos) < 2 and eval_fraction > 0:
            raise PcopilotError(
                f"--split_by repository needs two or more repositories, the data has {len(repos)}: use --split_by "
                "file (or auto) to hold out files"
            )
        split = DatasetSplit(
            "repository", eval_fraction, seed, eval_repos=_held_out_repositories(repos, eval_fraction, seed)
        )
    else:
        keys = ((repo_id, path) for repo_id, path, _ in documents)
        split = DatasetSplit("file", eval_fraction, seed, eval_files=_held_out_files(keys, eval_fraction, seed))
    return split.counted(documents)
