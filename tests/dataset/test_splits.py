"""The train/eval split: held out by repository (never one repository on both sides), by file when there is one
repository, deterministic whatever the order the rows are read in."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from personal_copilot.dataset import list_shards, read_document_keys, split_by_repository


def test_collected_dataset_is_split_by_repository(collected: Path) -> None:
    keys = read_document_keys(list_shards(collected))
    split = split_by_repository(keys, eval_fraction=0.25, seed=0)
    assert split.by == "repository" and len(split.eval_repos) == 1 and split.eval_files == ()
    sides = {(repo, split.side(repo, path)) for repo, path in keys}
    assert {repo for repo, side in sides if side == "eval"} == set(split.eval_repos)
    assert {repo for repo, side in sides if side == "train"} == {r for r, _ in keys} - set(split.eval_repos)
    assert split.eval_documents == sum(repo in split.eval_repos for repo, _ in keys)
    assert split.train_documents + split.eval_documents == len(keys)


KEYS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.text(min_size=1, max_size=6)),
    min_size=1,
    max_size=60,
    unique=True,
)


@settings(max_examples=200, deadline=None)
@given(keys=KEYS, fraction=st.floats(0.0, 0.9), seed=st.integers(0, 1000))
def test_no_repository_or_file_on_both_sides(keys: list[tuple[str, str]], fraction: float, seed: int) -> None:
    split = split_by_repository(keys, fraction, seed)
    repos = {repo for repo, _ in keys}
    eval_side = {(repo, path) for repo, path in keys if split.side(repo, path) == "eval"}
    if len(repos) > 1:
        assert split.by == "repository"
        assert {r for r, _ in eval_side}.isdisjoint({r for r, p in keys if (r, p) not in eval_side})
        held = split.eval_repos
    else:
        assert split.by == "file"
        held = split.eval_files
    names = repos if len(repos) > 1 else {path for _, path in keys}
    if fraction == 0 or len(names) < 2:
        assert held == ()
    else:
        assert 1 <= len(held) <= len(names) - 1  # something held out, something left to train on
    shuffled = random.Random(seed).sample(keys, len(keys))
    assert split_by_repository(shuffled, fraction, seed) == split


def test_one_repository_is_split_by_file() -> None:
    keys = [("solo", f"src/file_{i}.py") for i in range(50)]
    split = split_by_repository(keys, eval_fraction=0.1, seed=1)
    assert split.by == "file" and len(split.eval_files) == 5 and split.eval_repos == ()
    assert (split.train_documents, split.eval_documents) == (45, 5)
