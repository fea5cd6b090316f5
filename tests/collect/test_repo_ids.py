"""Every source gets a unique, stable repo_id: same-named mirrors collect side by side, a mirror's recorded upstream
names it, and `NAME=SOURCE` sets it."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from personal_copilot.collect import CollectConfig, run_collect
from personal_copilot.collect.sources import expand_sources
from tests.collect.conftest import module_source
from tests.conftest import git


def mirror(repo: Path, path: Path, upstream: str | None = None) -> Path:
    """A bare mirror of `repo` at `path` (as `git clone --mirror` makes); `upstream` is its recorded remote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    git(path.parent, "clone", "-q", "--mirror", str(repo), str(path))
    if upstream:
        git(path, "config", "remote.origin.url", upstream)
    return path


def collect(sources: list[str | Path], out: Path):
    config = CollectConfig(sources=[str(s) for s in sources], output=out, workers=1, cache_dir=out.parent / "clones")
    report = run_collect(config)
    rows = pq.read_table(out / "data").to_pylist()
    return {s.repo_id: s.status for s in report.sources}, sorted({(r["repo_id"], r["file_path"]) for r in rows})


def test_same_named_bare_mirrors_collect_side_by_side(make_repo, tmp_path: Path) -> None:
    mirrors = tmp_path / "mirrors"
    flask = mirror(make_repo("flask", {"app.py": module_source("app")}), mirrors / "flask" / "repo")
    requests = mirror(make_repo("requests", {"api.py": module_source("api")}), mirrors / "requests" / "repo")
    out = tmp_path / "out"

    statuses, rows = collect([flask, requests], out)

    assert statuses == {"flask/repo": "collected", "requests/repo": "collected"}
    assert rows == [("flask/repo", "app.py"), ("requests/repo", "api.py")]

    # Stable: the next run that names only one keeps both ids, and a third mirror of that name extends its own.
    django = mirror(make_repo("django", {"views.py": module_source("views")}), mirrors / "django" / "repo")
    statuses, rows = collect([requests, django], out)
    assert statuses == {"django/repo": "collected", "flask/repo": "carried", "requests/repo": "unchanged"}
    assert len(rows) == 3


def test_a_mirror_is_named_after_its_recorded_upstream(make_repo, tmp_path: Path) -> None:
    one = mirror(
        make_repo("a", {"a.py": module_source("a")}),
        tmp_path / "m1" / "repo.git",
        "https://github.com/pallets/flask.git",
    )
    two = mirror(
        make_repo("b", {"b.py": module_source("b")}), tmp_path / "m2" / "repo.git", "git@github.com:psf/requests.git"
    )

    statuses, rows = collect([one, two], tmp_path / "out")

    assert statuses == {"pallets/flask": "collected", "psf/requests": "collected"}
    assert rows == [("pallets/flask", "a.py"), ("psf/requests", "b.py")]


def test_same_named_work_tree_folders_get_their_parent(make_repo, tmp_path: Path) -> None:
    first = make_repo("app", {"a.py": module_source("a")})
    other = tmp_path / "elsewhere" / "app"
    other.mkdir(parents=True)
    (other / "b.py").write_text(module_source("b"))

    statuses, rows = collect([first, other], tmp_path / "out")

    assert statuses == {"elsewhere/app": "collected", "repos/app": "collected"}
    assert rows == [("elsewhere/app", "b.py"), ("repos/app", "a.py")]


def test_name_equals_source_sets_the_repo_id(make_repo, tmp_path: Path) -> None:
    work_tree = make_repo("service", {"s.py": module_source("s")})
    bare = mirror(make_repo("lib", {"l.py": module_source("l")}), tmp_path / "mirrors" / "repo")
    odd = tmp_path / "odd=folder"
    odd.mkdir()
    (odd / "o.py").write_text(module_source("o"))

    statuses, rows = collect([f"payments-api={work_tree}", f"team.lib:v2={bare}", odd], tmp_path / "out")

    assert statuses == {"odd=folder": "collected", "payments-api": "collected", "team.lib:v2": "collected"}
    assert rows == [("odd=folder", "o.py"), ("payments-api", "s.py"), ("team.lib:v2", "l.py")]
    sources, failed = expand_sources(["org=github:acme", f"x={bare.as_uri()}"], CollectConfig())
    assert [f.error for f in failed] == ["NAME= cannot rename a github:ORG"]
    assert [(s.repo_id, s.location) for s in sources] == [("x", bare.as_uri())]
