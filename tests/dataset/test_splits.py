"""The train/eval split: by file within every repository (each repository trained on and evaluated) or by whole
repository; `auto` picks by the number of repositories; deterministic whatever the order the rows are read in, and a
file's side does not move when other files are added."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personal_copilot.dataset import (
    MIN_REPOSITORIES_FOR_REPOSITORY_SPLIT,
    DatasetSplit,
    list_shards,
    read_document_sizes,
    split_documents,
)
from personal_copilot.errors import PcopilotError


def test_a_few_repositories_are_each_trained_on_and_evaluated(collected: Path) -> None:
    documents = read_document_sizes(list_shards(collected))
    split = split_documents(documents, eval_fraction=0.25, seed=0)
    assert split.by == "file" and split.eval_repos == ()
    assert {share.repo_id for share in split.repositories} == {"alpha", "beta", "gamma", "delta"}
    for share in split.repositories:
        assert share.train_files >= 1 and share.eval_files >= 1, share
        assert share.train_bytes > 0 and share.eval_bytes > 0
    assert sum(s.train_bytes + s.eval_bytes for s in split.repositories) == sum(size for _, _, size in documents)
    held = {(repo, path) for repo, path, _ in documents if split.side(repo, path) == "eval"}
    assert held == set(split.eval_files) and split.eval_documents == len(held)
    assert split.train_documents + split.eval_documents == len(documents)


def test_repository_mode_holds_out_whole_repositories(collected: Path) -> None:
    documents = read_document_sizes(list_shards(collected))
    split = split_documents(documents, eval_fraction=0.25, seed=0, by="repository")
    assert split.by == "repository" and len(split.eval_repos) == 1 and split.eval_files == ()
    sides = {(repo, split.side(repo, path)) for repo, path, _ in documents}
    assert {repo for repo, side in sides if side == "eval"} == set(split.eval_repos)
    assert {repo for repo, side in sides if side == "train"} == {r for r, _, _ in documents} - set(split.eval_repos)
    (held,) = (s for s in split.repositories if s.eval_files)
    assert held.repo_id == split.eval_repos[0] and held.train_files == 0


def test_auto_holds_out_repositories_only_when_there_are_many() -> None:
    def documents(repos: int) -> list[tuple[str, str, int]]:
        return [(f"repo{r}", f"file{f}.py", 100) for r in range(repos) for f in range(5)]

    assert split_documents(documents(MIN_REPOSITORIES_FOR_REPOSITORY_SPLIT - 1), 0.1, 0).by == "file"
    assert split_documents(documents(MIN_REPOSITORIES_FOR_REPOSITORY_SPLIT), 0.1, 0).by == "repository"
    assert split_documents(documents(MIN_REPOSITORIES_FOR_REPOSITORY_SPLIT), 0.1, 0, by="file").by == "file"


def test_a_file_keeps_its_side_when_files_are_added() -> None:
    first = [("web", f"app/views_{i}.py", 10) for i in range(200)] + [("lib", f"http/{i}.py", 10) for i in range(80)]
    added = first + [("web", f"app/new_{i}.py", 10) for i in range(100)] + [("lib", "http/extra.py", 10)]
    before, after = split_documents(first, 0.1, seed=3), split_documents(added, 0.1, seed=3)
    assert all(before.side(repo, path) == after.side(repo, path) for repo, path, _ in first)
    assert 0.05 < before.eval_documents / len(first) < 0.15  # about the fraction asked for
    assert split_documents(first, 0.1, seed=4).eval_files != before.eval_files


def test_big_and_small_repository_both_keep_files_on_each_side() -> None:
    documents = [("big", f"src/{i}.py", 1000) for i in range(120)] + [("small", f"{i}.py", 50) for i in range(3)]
    documents.append(("single", "only.py", 10))
    split = split_documents(documents, 0.1, seed=0)
    shares = {share.repo_id: share for share in split.repositories}
    assert shares["small"].eval_files >= 1 and shares["small"].train_files >= 1
    assert shares["big"].eval_files >= 1 and shares["big"].train_files >= 1
    assert (shares["single"].train_files, shares["single"].eval_files) == (1, 0)  # one file: trained on only
    rows = dict(split.summary_rows())
    assert rows["held out"].startswith(f"by file within each repository: {split.eval_documents} of 124 files")
    assert "too few to hold one out" in rows["  single"]


def test_nothing_held_out_with_fraction_zero() -> None:
    split = split_documents([("a", "x.py", 1), ("a", "y.py", 1), ("b", "z.py", 1)], 0.0, seed=0)
    assert split.eval_documents == 0 and split.summary_rows() == [("held out", "nothing: every file is trained on")]


def test_repository_mode_needs_two_repositories() -> None:
    with pytest.raises(PcopilotError, match="--split_by repository needs two or more repositories"):
        split_documents([("solo", "a.py", 1), ("solo", "b.py", 1)], 0.1, seed=0, by="repository")


def test_the_record_gives_back_the_same_split() -> None:
    documents = [(f"r{r}", f"d{f % 3}/f{f}.py", f) for r in range(3) for f in range(30)]
    for by in ("file", "repository"):
        split = split_documents(documents, 0.3, seed=5, by=by)
        assert DatasetSplit.from_record(split.to_record()) == split


DOCUMENTS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.text(min_size=1, max_size=6), st.integers(0, 99)),
    min_size=1,
    max_size=60,
    unique_by=lambda document: document[:2],
)


@settings(max_examples=100, deadline=None)
@given(documents=DOCUMENTS, fraction=st.floats(0.0, 0.9), seed=st.integers(0, 1000))
def test_every_repository_of_two_files_or_more_is_on_both_sides(
    documents: list[tuple[str, str, int]], fraction: float, seed: int
) -> None:
    split = split_documents(documents, fraction, seed, by="file")
    for share in split.repositories:
        files = share.train_files + share.eval_files
        if fraction == 0 or files < 2:
            assert share.eval_files == 0
        else:
            assert share.eval_files >= 1 and share.train_files >= 1
    shuffled = random.Random(seed).sample(documents, len(documents))
    assert split_documents(shuffled, fraction, seed, by="file") == split


@settings(max_examples=100, deadline=None)
@given(documents=DOCUMENTS, fraction=st.floats(0.0, 0.9), seed=st.integers(0, 1000))
def test_no_repository_on_both_sides_when_split_by_repository(
    documents: list[tuple[str, str, int]], fraction: float, seed: int
) -> None:
    repos = {repo for repo, _, _ in documents}
    if len(repos) < 2:
        return
    split = split_documents(documents, fraction, seed, by="repository")
    eval_side = {(repo, path) for repo, path, _ in documents if split.side(repo, path) == "eval"}
    assert {r for r, _ in eval_side}.isdisjoint({r for r, p, _ in documents if (r, p) not in eval_side})
    if fraction == 0:
        assert split.eval_repos == ()
    else:
        assert 1 <= len(split.eval_repos) <= len(repos) - 1  # something held out, something left to train on
    shuffled = random.Random(seed).sample(documents, len(documents))
    assert split_documents(shuffled, fraction, seed, by="repository") == split
