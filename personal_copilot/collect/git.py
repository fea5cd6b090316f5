"""The git commands collect needs: shallow clone-or-update into a cache, HEAD, and the files of a work tree.

Git never prompts (GIT_TERMINAL_PROMPT=0); a GitHub token travels in the environment of the git process as an
HTTP header, never on the command line or in the clone's `.git/config`.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse


class GitError(RuntimeError):
    """A git command failed; the message carries git's own words."""


def _git_env(url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "LC_ALL": "C"}
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    token = os.environ.get("GITHUB_TOKEN")
    if token and url and urlparse(url).hostname == "github.com":
        credentials = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.https://github.com/.extraheader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {credentials}",
        }
    return env


def run_git(args: list[str], cwd: Path | None = None, url: str | None = None, timeout: float | None = None) -> str:
    """Runs `git args…` and returns its stdout; raises GitError with git's stderr on failure."""
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, env=_git_env(url), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f} s") from error
    except FileNotFoundError as error:
        raise GitError("git is not installed (it is needed to read repositories)") from error
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()
        raise GitError(message[-1] if message else f"git {args[0]} failed with status {result.returncode}")
    return result.stdout


def cache_name(url: str) -> str:
    """A folder name for a clone of `url` (host and path, no credentials)."""
    parsed = urlparse(url) if "://" in url else urlparse("ssh://" + url.replace(":", "/", 1))
    name = f"{parsed.hostname or 'local'}/{parsed.path}"
    return re.sub(r"[^A-Za-z0-9._-]+", "__", name.removesuffix(".git")).strip("_")


def clone_or_update(url: str, destination: Path, timeout: float) -> None:
    """Makes `destination` a shallow checkout of the remote's default branch: cloned the first time, fetched and
    reset later. A clone is made under a temporary name and renamed, so an interrupted one is never reused."""
    if (destination / ".git").is_dir():
        run_git(["fetch", "--depth", "1", "--no-tags", "origin", "HEAD"], cwd=destination, url=url, timeout=timeout)
        run_git(["checkout", "--force", "--detach", "FETCH_HEAD"], cwd=destination, timeout=timeout)
        run_git(["clean", "-ffdxq"], cwd=destination, timeout=timeout)
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        run_git(["clone", "--depth", "1", "--no-tags", "--single-branch", url, str(partial)], url=url, timeout=timeout)
        os.replace(partial, destination)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def head_commit(work_tree: Path) -> str | None:
    """The commit checked out in `work_tree`, or None when the repository has no commit yet."""
    try:
        return run_git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd=work_tree).strip() or None
    except GitError:
        return None


def git_top_level(path: Path) -> Path | None:
    """The root of the git work tree containing `path`, or None if it is not in one."""
    try:
        return Path(run_git(["rev-parse", "--show-toplevel"], cwd=path).strip())
    except GitError:
        return None


def is_ignored_by_enclosing_repository(path: Path) -> bool:
    """True when `path` lies in a git work tree that ignores it (a virtualenv or tool folder inside a checkout)."""
    try:
        run_git(["check-ignore", "-q", "."], cwd=path)
    except GitError:
        return False
    return True


def is_bare_repository(path: Path) -> bool:
    try:
        return run_git(["rev-parse", "--is-bare-repository"], cwd=path).strip() == "true"
    except GitError:
        return False


def origin_url(repository: Path) -> str | None:
    """The URL the repository's `origin` remote records (a mirror's upstream), or None."""
    try:
        return run_git(["config", "--get", "remote.origin.url"], cwd=repository).strip() or None
    except GitError:
        return None


def list_work_tree_files(work_tree: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files under `work_tree` (so .gitignore is honoured), as POSIX paths
    relative to it."""
    output = run_git(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--deduplicate"], cwd=work_tree)
    return sorted({path for path in output.split("\0") if path})
