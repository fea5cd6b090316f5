"""From what the user typed (folders, git URLs, github:ORG) to local work trees ready to read.

`expand_sources` turns the specs into `Source`s (github:ORG becomes one per repository); `materialize` clones or
updates remote ones and says which commit and content fingerprint each has, or why it failed.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from personal_copilot.collect.config import CollectConfig
from personal_copilot.collect.git import (
    GitError,
    cache_name,
    clone_or_update,
    git_top_level,
    head_commit,
    is_bare_repository,
    is_ignored_by_enclosing_repository,
    list_work_tree_files,
)
from personal_copilot.collect.github import GitHubError, list_owner_repos

_REMOTE_PREFIXES = ("https://", "http://", "ssh://", "git://", "file://")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")
_NAMED = re.compile(r"^(?P<name>[\w.:-]+)=(?P<spec>.+)$")
"""`NAME=SOURCE`: the rows of SOURCE carry `NAME` as their repo_id."""


@dataclass(frozen=True)
class Source:
    """One repository to collect: where it comes from and the name its rows carry."""

    spec: str
    """What the user gave (for github:ORG, the organisation spec)."""
    repo_id: str
    location: str
    """A local folder path, or a URL to clone."""
    remote: bool


@dataclass(frozen=True)
class ReadySource:
    """A source with a readable work tree."""

    source: Source
    root: Path
    commit: str | None
    fingerprint: str
    """Changes whenever the files collect would read change (the commit for clones)."""
    files: list[str]
    """Candidate files, POSIX paths relative to `root`."""


@dataclass(frozen=True)
class FailedSource:
    source: Source
    error: str


def _repo_id_from_url(url: str) -> str:
    path = urlparse(url).path if "://" in url else url.split(":", 1)[1]
    parts = [p for p in path.removesuffix("/").removesuffix(".git").split("/") if p]
    if not parts:
        return url
    return parts[-1] if url.startswith("file://") else "/".join(parts[-2:])


def is_remote(spec: str) -> bool:
    return spec.startswith(_REMOTE_PREFIXES) or bool(_SCP_LIKE.match(spec))


def expand_sources(specs: list[str], config: CollectConfig) -> tuple[list[Source], list[FailedSource]]:
    """Parses the specs; github:ORG is listed through the API. A spec that cannot be parsed fails alone."""
    sources: list[Source] = []
    failed: list[FailedSource] = []
    for given in specs:
        named = _NAMED.match(given)
        spec = named.group("spec") if named else given
        if named and spec.startswith("github:"):
            failed.append(FailedSource(Source(given, given, spec, remote=True), "NAME= cannot rename a github:ORG"))
            continue
        if spec.startswith("github:"):
            owner = spec.removeprefix("github:").strip("/")
            try:
                repos = list_owner_repos(
                    owner,
                    config.github_api_url,
                    include_forks=config.include_forks,
                    include_archived=config.include_archived,
                    top_k=config.top_k,
                )
            except GitHubError as error:
                failed.append(FailedSource(Source(spec, spec, spec, remote=True), str(error)))
                continue
            sources += [Source(spec, repo.full_name, repo.clone_url, remote=True) for repo in repos]
        elif is_remote(spec):
            sources.append(Source(given, named["name"] if named else _repo_id_from_url(spec), spec, remote=True))
        else:
            path = Path(spec).expanduser().resolve()
            if path.is_dir() and is_bare_repository(path):
                name = named["name"] if named else path.name.removesuffix(".git")
                sources.append(Source(given, name, path.as_uri(), remote=True))
            else:
                sources.append(Source(given, named["name"] if named else path.name, str(path), remote=False))
    return sources, failed


def _walk_plain_folder(root: Path) -> list[str]:
    files = []
    for directory, subdirectories, names in os.walk(root, followlinks=False):
        if "pyvenv.cfg" in names and Path(directory) != root:
            subdirectories.clear()
            continue
        # A symlinked directory is not descended into; it is listed so that it is counted as a dropped symlink.
        linked = [d for d in subdirectories if os.path.islink(os.path.join(directory, d))]
        subdirectories[:] = sorted(d for d in subdirectories if d not in linked)
        relative = Path(directory).relative_to(root).as_posix()
        files += [name if relative == "." else f"{relative}/{name}" for name in names + linked]
    return sorted(files)


def _fingerprint(root: Path, files: list[str], commit: str | None) -> str:
    digest = hashlib.sha256(f"{commit}\n".encode())
    for path in files:
        try:
            stat = os.lstat(root / path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def materialize(source: Source, config: CollectConfig) -> ReadySource | FailedSource:
    """Clones or updates a remote source, or inspects a local one; never raises for a bad source."""
    try:
        if source.remote:
            root = config.cache_dir / cache_name(source.location)
            clone_or_update(source.location, root, timeout=config.clone_timeout)
            commit = head_commit(root)
            if commit is None:
                return FailedSource(source, "empty repository: it has no commit")
            return ReadySource(source, root, commit, commit, list_work_tree_files(root))
        root = Path(source.location)
        if not root.exists():
            return FailedSource(source, f"no such directory: {root}")
        if not root.is_dir():
            return FailedSource(source, f"not a directory: {root}")
        if git_top_level(root) is not None and not is_ignored_by_enclosing_repository(root):
            commit = head_commit(root)
            files = list_work_tree_files(root)
        else:
            commit, files = None, _walk_plain_folder(root)
        if not files:
            return FailedSource(source, "empty: no files")
        return ReadySource(source, root, commit, _fingerprint(root, files, commit), files)
    except (GitError, OSError) as error:
        return FailedSource(source, str(error))
