"""Shared fixtures: git repositories built in temp dirs, an environment with no network and no progress bars."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PCOPILOT_PROGRESS"] = "0"
os.environ.update(
    GIT_AUTHOR_NAME="Test",
    GIT_AUTHOR_EMAIL="test@example.com",
    GIT_COMMITTER_NAME="Test",
    GIT_COMMITTER_EMAIL="test@example.com",
    GIT_CONFIG_NOSYSTEM="1",
)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def commit_all(root: Path, message: str = "update") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Builds a git repository with the given files and one commit: `make_repo("name", {"a.py": "..."})`."""

    def make(name: str, files: dict[str, str | bytes], commit: bool = True) -> Path:
        root = tmp_path / "repos" / name
        root.mkdir(parents=True)
        git(root, "init", "-q", "-b", "main")
        write_files(root, files)
        if commit:
            commit_all(root, "initial")
        return root

    return make
