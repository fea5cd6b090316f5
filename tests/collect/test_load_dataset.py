"""`datasets.load_dataset(DIR)` returns what collect wrote: after an incremental re-collect, and for two different
datasets in folders of the same name. `datasets` keys its cache on the data files the card names, so the shard
names carry a fingerprint of the content and the card lists them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from personal_copilot.collect import CollectConfig, run_collect
from tests.collect.conftest import module_source
from tests.conftest import commit_all, write_files


def collect(sources: list[Path], out: Path) -> None:
    run_collect(CollectConfig(sources=[str(s) for s in sources], output=out, workers=1, cache_dir=out.parent / "c"))


def loaded_paths(out: Path, cache: Path) -> list[tuple[str, str]]:
    import datasets

    rows = datasets.load_dataset(str(out), split="train", cache_dir=str(cache))
    return sorted(zip(rows["repo_id"], rows["file_path"], strict=True))


def written_paths(out: Path) -> list[tuple[str, str]]:
    table = pq.read_table(out / "data")
    return sorted(zip(table.column("repo_id").to_pylist(), table.column("file_path").to_pylist(), strict=True))


@pytest.mark.slow
def test_load_dataset_after_an_incremental_recollect_returns_the_new_rows(make_repo, tmp_path: Path) -> None:
    repo = make_repo("service", {"a.py": module_source("a")})
    out, cache = tmp_path / "data", tmp_path / "hf-cache"
    collect([repo], out)
    assert loaded_paths(out, cache) == [("service", "a.py")]

    write_files(repo, {"b.py": module_source("b")})
    commit_all(repo, "add b")
    collect([repo], out)

    assert loaded_paths(out, cache) == written_paths(out) == [("service", "a.py"), ("service", "b.py")]


@pytest.mark.slow
def test_two_datasets_in_folders_of_the_same_name_load_their_own_rows(make_repo, tmp_path: Path) -> None:
    first = make_repo("payments", {"pay.py": module_source("pay")})
    second = make_repo("search", {"find.py": module_source("find"), "rank.py": module_source("rank")})
    cache = tmp_path / "hf-cache"
    team_a, team_b = tmp_path / "team-a" / "data", tmp_path / "team-b" / "data"
    collect([first], team_a)
    collect([second], team_b)

    assert loaded_paths(team_a, cache) == [("payments", "pay.py")]
    assert loaded_paths(team_b, cache) == [("search", "find.py"), ("search", "rank.py")]
    assert loaded_paths(team_a, cache) == [("payments", "pay.py")]


def test_unchanged_recollect_rewrites_no_shard(make_repo, tmp_path: Path) -> None:
    repo = make_repo("service", {"a.py": module_source("a")})
    out = tmp_path / "data"
    collect([repo], out)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in [*(out / "data").iterdir(), out / "README.md"]}

    collect([repo], out)

    assert {
        p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in [*(out / "data").iterdir(), out / "README.md"]
    } == before
