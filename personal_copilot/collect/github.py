"""Lists the repositories of a GitHub organisation (or user) through the REST API, following pagination."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass(frozen=True)
class GitHubRepo:
    full_name: str
    clone_url: str
    stars: int
    fork: bool
    archived: bool


class GitHubError(RuntimeError):
    """The API refused or failed; the message says what to do."""


def _get(url: str, timeout: float) -> tuple[list[dict], str | None]:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token := os.environ.get("GITHUB_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
            link = response.headers.get("Link") or ""
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise FileNotFoundError(url) from error
        hint = " (rate limited or private: set GITHUB_TOKEN)" if error.code in (401, 403, 429) else ""
        raise GitHubError(f"GitHub API answered {error.code} {error.reason} for {url}{hint}") from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise GitHubError(f"GitHub API unreachable at {url}: {error}") from error
    if not isinstance(payload, list):
        raise GitHubError(f"GitHub API returned {type(payload).__name__}, expected a list, for {url}")
    match = _NEXT_LINK.search(link)
    return payload, match.group(1) if match else None


def _list_pages(url: str, timeout: float) -> list[dict]:
    items: list[dict] = []
    next_url: str | None = url
    while next_url:
        page, next_url = _get(next_url, timeout)
        items += page
    return items


def list_owner_repos(
    owner: str,
    api_url: str = "https://api.github.com",
    *,
    include_forks: bool = False,
    include_archived: bool = False,
    top_k: int | None = None,
    timeout: float = 30.0,
) -> list[GitHubRepo]:
    """The repositories of an organisation (or, failing that, a user), most-starred first (ties by name)."""
    api_url = api_url.rstrip("/")
    try:
        raw = _list_pages(f"{api_url}/orgs/{owner}/repos?type=all&per_page=100", timeout)
    except FileNotFoundError:
        try:
            raw = _list_pages(f"{api_url}/users/{owner}/repos?type=owner&per_page=100", timeout)
        except FileNotFoundError as error:
            raise GitHubError(f"no GitHub organisation or user named {owner!r}") from error
    repos = [
        GitHubRepo(
            full_name=item["full_name"],
            clone_url=item["clone_url"],
            stars=int(item.get("stargazers_count") or 0),
            fork=bool(item.get("fork")),
            archived=bool(item.get("archived")),
        )
        for item in raw
    ]
    repos = [r for r in repos if (include_forks or not r.fork) and (include_archived or not r.archived)]
    repos.sort(key=lambda r: (-r.stars, r.full_name.lower()))
    return repos[:top_k] if top_k else repos
