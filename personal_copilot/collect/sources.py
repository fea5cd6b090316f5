"""From what the user typed (folders, git URLs, github:ORG) to local work trees ready to read.

`expand_sources` turns the specs into `Source`s (github:ORG becomes one per repository); `unique_repo_ids` gives
sources named after their folder an id no other source has; `materialize` clones or updates remote ones and says
which commit and content fingerprint each has, or why it failed.

A source's repo_id is, in this order: NAME for `NAME=SOURCE`; `owner/name` for a URL, a github:ORG repository, or a
bare repository whose config records its upstream (`remote.origin.url`, as mirrors do); else its folder's name,
extended with parent folders (`flask/repo`, `requests/repo`) as far as needed to be unique, and kept from one run
to the next for the same folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass, replace
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
    origin_url,
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
    path_parts: tuple[str, ...] = ()
    """For a source named after its folder: the folder's path components, whose last ones make its repo_id unique
    (see `unique_repo_ids`). Empty when the id is fixed (NAME=, a URL, a mirror's recorded upstream)."""


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


def _parse_named(given: str) -> tuple[str | None, str]:
    """(NAME, SOURCE) for `NAME=SOURCE`, else (None, given); an existing folder whose name holds `=` is a folder."""
    named = _NAMED.match(given)
    if named is None or Path(given).expanduser().exists():
        return None, given
    return named["name"], named["spec"]


def _path_parts(path: Path) -> tuple[str, ...]:
    return (*path.parts[1:-1], path.name.removesuffix(".git")) if path.name else ()


def _local_source(given: str, name: str | None, spec: str) -> Source:
    path = Path(spec).expanduser().resolve()
    parts = _path_parts(path)
    if not (path.is_dir() and is_bare_repository(path)):
        return Source(given, name or path.name, str(path), remote=False, path_parts=() if name else parts)
    if name:
        return Source(given, name, path.as_uri(), remote=True)
    upstream = origin_url(path)
    if upstream and is_remote(upstream) and not upstream.startswith("file://"):
        return Source(given, _repo_id_from_url(upstream), path.as_uri(), remote=True)
    return Source(given, parts[-1], path.as_uri(), remote=True, path_parts=parts)


def expand_sources(specs: list[str], config: CollectConfig) -> tuple[list[Source], list[FailedSource]]:
    """Parses the specs; github:ORG is listed through the API. A spec that cannot be parsed fails alone."""
    sources: list[Source] = []
    failed: list[FailedSource] = []
    for given in specs:
        name, spec = _parse_named(given)
        if name and spec.startswith("github:"):
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
            sources.append(Source(given, name or _repo_id_from_url(spec), spec, remote=True))
        else:
            sources.append(_local_source(given, name, spec))
    return sources, failed


def unique_repo_ids(sources: list[Source], earlier: dict[str, str]) -> list[Source]:
    """Gives each source named after its folder a repo_id that no other source has, in this run or (`earlier`:
    location -> repo_id of the sources of earlier runs) before: the id an earlier run gave the same folder, else the
    fewest last path components that no other folder, of this run or an earlier one, ends with (`repo` ->
    `flask/repo`). Fixed ids are left as given."""
    owners: dict[str, set[str]] = defaultdict(set)
    for source in sources:
        if not source.path_parts:
            owners[source.repo_id].add(source.location)
    for location, repo_id in earlier.items():
        owners[repo_id].add(location)
    chosen = {s.location: earlier[s.location] for s in sources if s.path_parts and s.location in earlier}
    pending = {s.location: s.path_parts for s in sources if s.path_parts and s.location not in chosen}
    folders = {loc: _path_parts(Path(urlparse(loc).path)) for loc in earlier if loc.startswith("file://")}
    folders |= {loc: _path_parts(Path(loc)) for loc in earlier if not is_remote(loc)}
    folders |= pending
    depth = 1
    while pending:
        claims: dict[str, set[str]] = defaultdict(set)
        for location, parts in folders.items():
            claims["/".join(parts[-depth:])].add(location)
        for location, repo_id in chosen.items():
            claims[repo_id].add(location)
        for location, parts in pending.items():
            candidate = "/".join(parts[-depth:])
            if not (claims[candidate] | owners[candidate]) - {location} or depth >= len(parts):
                chosen[location] = candidate
        pending = {location: parts for location, parts in pending.items() if location not in chosen}
        depth += 1
    return [replace(s, repo_id=chosen[s.location]) if s.path_parts else s for s in sources]


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
