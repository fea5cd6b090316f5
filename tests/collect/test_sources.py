"""Remote sources: bare repositories over file://, bad sources, a GitHub organisation listed over (local) HTTP,
and the upload to the Hub (mocked)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pyarrow.parquet as pq
import pytest

from personal_copilot.collect import CollectConfig, run_collect
from personal_copilot.collect.github import GitHubError, list_owner_repos
from personal_copilot.collect.sources import expand_sources
from tests.collect.conftest import module_source
from tests.conftest import commit_all, git, write_files


def bare_clone(repo: Path) -> Path:
    bare = repo.with_name(repo.name + ".git")
    git(repo.parent, "clone", "-q", "--bare", str(repo), str(bare))
    return bare


def run(sources: list[str], out: Path, **options):
    config = CollectConfig(sources=sources, output=out, workers=2, cache_dir=out.parent / "clones", **options)
    report = run_collect(config)
    return report, pq.read_table(out / "data").to_pylist()


def test_file_url_and_bare_path_sources(make_repo, tmp_path: Path) -> None:
    repo = make_repo("service", {"main.py": module_source("main")})
    bare = bare_clone(repo)
    report, rows = run([bare.as_uri()], tmp_path / "out")

    assert [(r["repo_id"], r["file_path"]) for r in rows] == [("service", "main.py")]
    assert report.sources[0].commit == git(repo, "rev-parse", "HEAD").strip()
    clone = next((tmp_path / "clones").iterdir())
    assert git(clone, "rev-parse", "--is-shallow-repository").strip() == "true"

    sources, failed = expand_sources([str(bare)], CollectConfig())
    assert not failed and sources[0].remote and sources[0].location == bare.as_uri()


def test_new_commit_in_remote_is_fetched_into_the_cached_clone(make_repo, tmp_path: Path) -> None:
    repo = make_repo("service", {"main.py": module_source("main")})
    bare = bare_clone(repo)
    out = tmp_path / "out"
    run([bare.as_uri()], out)
    report, _ = run([bare.as_uri()], out)
    assert report.sources[0].status == "unchanged"

    write_files(repo, {"extra.py": module_source("extra")})
    commit_all(repo)
    git(repo, "push", "-q", str(bare), "main")
    report, rows = run([bare.as_uri()], out)

    assert report.sources[0].status == "collected"
    assert [r["file_path"] for r in rows] == ["extra.py", "main.py"]


def test_bad_sources_are_reported_and_the_rest_goes_on(make_repo, tmp_path: Path) -> None:
    good = make_repo("good", {"ok.py": module_source("ok")})
    empty_bare = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(empty_bare))
    not_a_repo = tmp_path / "not-a-repo"
    not_a_repo.mkdir()
    sources = [
        str(good),
        str(tmp_path / "missing"),
        (tmp_path / "nowhere.git").as_uri(),
        "https://127.0.0.1:9/nobody/nothing.git",
        empty_bare.as_uri(),
        str(not_a_repo),
    ]
    report, rows = run(sources, tmp_path / "out", clone_timeout=60)

    statuses = {s.source: (s.status, s.error) for s in report.sources}
    assert statuses[str(good)] == ("collected", None)
    assert "no such directory" in statuses[str(tmp_path / "missing")][1]
    assert statuses[(tmp_path / "nowhere.git").as_uri()][0] == "failed"
    assert statuses["https://127.0.0.1:9/nobody/nothing.git"][0] == "failed"
    assert "empty repository" in statuses[empty_bare.as_uri()][1]
    assert "empty" in statuses[str(not_a_repo)][1]
    assert [r["file_path"] for r in rows] == ["ok.py"]
    assert report.exit_code == 1


def test_two_sources_given_one_name_fail_the_second(make_repo, tmp_path: Path) -> None:
    first = make_repo("app", {"a.py": module_source("a")})
    other = make_repo("other", {"b.py": module_source("b")})
    report, rows = run([f"app={first}", f"app={other}"], tmp_path / "out")

    failed = [s for s in report.sources if s.status == "failed"]
    assert len(failed) == 1 and "already taken" in failed[0].error and "NAME=SOURCE" in failed[0].error
    assert [r["file_path"] for r in rows] == ["a.py"]

    again, rows = run([f"app={first}", f"app={other}"], tmp_path / "out")  # unchanged: the same rows and counts
    assert [r["file_path"] for r in rows] == ["a.py"] and again.files_kept == report.files_kept == 1


class FakeGitHub(BaseHTTPRequestHandler):
    """Serves /orgs/acme/repos in pages of 2 with Link headers; records the Authorization header."""

    repos: ClassVar[list[dict]] = []
    seen_authorization: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        FakeGitHub.seen_authorization.append(self.headers.get("Authorization"))
        if url.path == "/orgs/acme/repos":
            page = int(parse_qs(url.query).get("page", ["1"])[0])
            items = self.repos[(page - 1) * 2 : page * 2]
            self.send_response(200)
            if page * 2 < len(self.repos):
                host = f"http://{self.headers['Host']}"
                self.send_header("Link", f'<{host}/orgs/acme/repos?per_page=2&page={page + 1}>; rel="next"')
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(items).encode())
        elif url.path == "/users/solo/repos":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps(self.repos[:1]).encode())
        else:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"message": "Not Found"}')

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def github_api(make_repo, tmp_path: Path) -> Iterator[str]:
    def repo(name: str, stars: int, fork: bool = False, archived: bool = False) -> dict:
        bare = bare_clone(make_repo(name, {f"{name}.py": module_source(name.replace("-", "_"))}))
        return {
            "full_name": f"acme/{name}",
            "clone_url": bare.as_uri(),
            "stargazers_count": stars,
            "fork": fork,
            "archived": archived,
        }

    FakeGitHub.repos = [
        repo("popular", 500),
        repo("forked", 900, fork=True),
        repo("old", 800, archived=True),
        repo("middle", 50),
        repo("tiny", 1),
    ]
    FakeGitHub.seen_authorization = []
    server = HTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_github_org_listing_paginates_filters_and_sorts(github_api: str, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    repos = list_owner_repos("acme", github_api)

    assert [r.full_name for r in repos] == ["acme/popular", "acme/middle", "acme/tiny"]
    assert FakeGitHub.seen_authorization == ["Bearer test-token"] * 3  # three pages of two
    everything = list_owner_repos("acme", github_api, include_forks=True, include_archived=True, top_k=2)
    assert [r.full_name for r in everything] == ["acme/forked", "acme/old"]
    assert [r.full_name for r in list_owner_repos("solo", github_api)] == ["acme/popular"]  # user fallback
    with pytest.raises(GitHubError, match="no GitHub organisation or user named 'ghost'"):
        list_owner_repos("ghost", github_api)


def test_github_org_source_collects_top_k(github_api: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    report, rows = run(["github:acme", "github:ghost"], tmp_path / "out", top_k=2, github_api_url=github_api)

    assert [(r["repo_id"], r["file_path"]) for r in rows] == [
        ("acme/middle", "middle.py"),
        ("acme/popular", "popular.py"),
    ]
    failed = [s for s in report.sources if s.status == "failed"]
    assert [s.source for s in failed] == ["github:ghost"]
    assert set(FakeGitHub.seen_authorization) == {None}


def test_push_to_hub_uploads_the_dataset(make_repo, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub

    calls: list[tuple[str, dict]] = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
            return f"https://huggingface.co/datasets/{repo_id}"

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    repo = make_repo("app", {"a.py": module_source("a")})
    out = tmp_path / "out"
    report, _ = run([str(repo)], out, push_to_hub="team/code")

    assert calls[0] == (
        "create_repo",
        {"repo_id": "team/code", "repo_type": "dataset", "private": True, "exist_ok": True},
    )
    upload = calls[1][1]
    assert upload["folder_path"] == str(out) and upload["repo_type"] == "dataset"
    assert "data/*.parquet" in upload["allow_patterns"]
    assert report.pushed_to == "https://huggingface.co/datasets/team/code"
    assert json.loads((out / "report.json").read_text())["pushed_to"] == report.pushed_to
