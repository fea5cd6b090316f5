"""Re-running into the same directory: unchanged sources are skipped, changed ones replaced, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from personal_copilot.collect import CollectConfig, run_collect
from personal_copilot.collect import run as collect_run
from personal_copilot.collect.store import recover_interrupted_run
from tests.collect.conftest import module_source
from tests.conftest import commit_all, write_files


def collect(sources: list[Path], out: Path, **overrides):
    config = CollectConfig(sources=[str(s) for s in sources], output=out, workers=1, cache_dir=out.parent / "clones")
    for name, value in overrides.items():
        setattr(config, name, value)
    report = run_collect(config)
    return report, pq.read_table(out / "data").to_pylist()


@pytest.fixture
def two_repos(make_repo) -> tuple[Path, Path]:
    alpha = make_repo("alpha", {"a.py": module_source("a"), "b.py": module_source("b")})
    beta = make_repo("beta", {"c.py": module_source("c")})
    return alpha, beta


def keys(rows: list[dict]) -> list[tuple[str, str]]:
    return [(r["repo_id"], r["file_path"]) for r in rows]


def test_rerun_with_nothing_changed_skips_every_source(two_repos, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _, first = collect(list(two_repos), out)
    report, again = collect(list(two_repos), out)

    assert [s.status for s in report.sources] == ["unchanged", "unchanged"]
    assert again == first
    assert report.files_kept == 3


def test_changed_source_is_replaced_and_others_kept(two_repos, tmp_path: Path) -> None:
    alpha, beta = two_repos
    out = tmp_path / "out"
    collect([alpha, beta], out)
    write_files(beta, {"d.py": module_source("d")})
    (beta / "c.py").unlink()
    new_commit = commit_all(beta, "replace c with d")

    report, rows = collect([alpha, beta], out)

    assert {s.repo_id: s.status for s in report.sources} == {"alpha": "unchanged", "beta": "collected"}
    assert keys(rows) == [("alpha", "a.py"), ("alpha", "b.py"), ("beta", "d.py")]
    assert {r["commit"] for r in rows if r["repo_id"] == "beta"} == {new_commit}
    assert len(set(keys(rows))) == len(rows)


def test_uncommitted_edit_of_a_local_work_tree_is_seen(two_repos, tmp_path: Path) -> None:
    alpha, beta = two_repos
    out = tmp_path / "out"
    collect([alpha, beta], out)
    (alpha / "a.py").write_text(module_source("a", variant="\nEXTRA = 1"))

    report, rows = collect([alpha, beta], out)

    assert {s.repo_id: s.status for s in report.sources} == {"alpha": "collected", "beta": "unchanged"}
    assert next(r for r in rows if r["file_path"] == "a.py")["content"].endswith("EXTRA = 1\n")


def test_sources_of_earlier_runs_are_carried_unless_pruned(two_repos, tmp_path: Path) -> None:
    alpha, beta = two_repos
    out = tmp_path / "out"
    collect([alpha], out)

    report, rows = collect([beta], out)
    assert {s.repo_id: s.status for s in report.sources} == {"alpha": "carried", "beta": "collected"}
    assert {r["repo_id"] for r in rows} == {"alpha", "beta"}

    report, rows = collect([beta], out, prune=True)
    assert [s.repo_id for s in report.sources] == ["beta"]
    assert {r["repo_id"] for r in rows} == {"beta"}


def test_duplicates_are_recomputed_when_the_kept_copy_goes_away(make_repo, tmp_path: Path) -> None:
    shared = module_source("shared")
    alpha = make_repo("alpha", {"shared.py": shared})
    beta = make_repo("beta", {"copy.py": shared})
    out = tmp_path / "out"
    _, rows = collect([alpha, beta], out)
    assert keys(rows) == [("alpha", "shared.py")]

    (alpha / "shared.py").unlink()
    write_files(alpha, {"other.py": module_source("other")})
    commit_all(alpha)
    _, rows = collect([alpha, beta], out)
    assert keys(rows) == [("alpha", "other.py"), ("beta", "copy.py")]


def test_filter_change_reprocesses_unchanged_sources(two_repos, tmp_path: Path) -> None:
    out = tmp_path / "out"
    collect(list(two_repos), out)
    config = CollectConfig(sources=[str(s) for s in two_repos], output=out, workers=1, cache_dir=tmp_path / "clones")
    config.filters.exclude = ["b.py"]

    report = run_collect(config)

    assert [s.status for s in report.sources] == ["collected", "collected"]
    assert report.dropped == {"excluded": 1}


def test_killed_run_leaves_previous_dataset_intact(two_repos, tmp_path: Path, monkeypatch) -> None:
    alpha, beta = two_repos
    out = tmp_path / "out"
    collect([alpha, beta], out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and ".pcopilot" not in p.parts}
    write_files(beta, {"d.py": module_source("d")})
    commit_all(beta)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(collect_run, "write_dataset", killed)
    with pytest.raises(KeyboardInterrupt):
        collect([alpha, beta], out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and ".pcopilot" not in p.parts}
    assert after == before

    monkeypatch.undo()
    report, rows = collect([alpha, beta], out)
    assert ("beta", "d.py") in keys(rows)
    assert {s.repo_id: s.status for s in report.sources} == {"alpha": "unchanged", "beta": "collected"}


def test_swap_interrupted_between_renames_is_recovered(two_repos, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _, rows = collect(list(two_repos), out)
    (out / "data").rename(out / ".pcopilot" / "previous-data")  # killed after the first rename of the swap

    recover_interrupted_run(out)

    assert pq.read_table(out / "data").to_pylist() == rows


def test_failed_source_keeps_its_earlier_rows(two_repos, tmp_path: Path) -> None:
    alpha, beta = two_repos
    out = tmp_path / "out"
    collect([alpha, beta], out)
    moved = beta.with_name("beta-moved")
    beta.rename(moved)

    report, rows = collect([alpha, beta], out)

    beta_report = next(s for s in report.sources if s.repo_id == "beta")
    assert beta_report.status == "failed" and "no such directory" in beta_report.error
    assert ("beta", "c.py") in keys(rows)
    assert report.exit_code == 1
