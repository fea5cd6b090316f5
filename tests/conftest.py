"""Shared fixtures: git repositories built in temp dirs, an environment with no network and no progress bars."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.corpus import write_repositories

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


# Built once per session and offline: the dataset `pcopilot collect` makes of the generated corpus (several shards),
# and a byte-level BPE tokenizer (StarCoder family, 1024 tokens) trained on it by `pcopilot tokenizer`'s function.


@pytest.fixture(scope="session")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset collected from four repositories into several Parquet shards."""
    from personal_copilot.collect import CollectConfig, DedupConfig, run_collect

    root = tmp_path_factory.mktemp("repos")
    folders = write_repositories(root)
    output = tmp_path_factory.mktemp("collected")
    config = CollectConfig(
        sources=[str(f) for f in folders],
        output=output,
        workers=1,
        redact_secrets=False,
        shard_max_bytes=16 * 1024,
        dedup=DedupConfig(near=False),
    )
    report = run_collect(config)
    assert report.exit_code == 0 and report.files_kept == 4 * 11 + 2
    return output


@pytest.fixture(scope="session")
def tokenizer_dir(collected: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A StarCoder-family byte-level BPE tokenizer (1024 tokens) trained on `collected` by `run_tokenizer`."""
    from personal_copilot.dataset import TokenizerConfig, run_tokenizer

    output = tmp_path_factory.mktemp("tokenizer")
    run_tokenizer(TokenizerConfig(data=collected, output=output, vocab_size=1024, family="starcoder"))
    return output


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir: Path):
    from personal_copilot.dataset import load_tokenizer

    return load_tokenizer(str(tokenizer_dir))


@pytest.fixture(scope="session")
def encoder(tokenizer):
    from personal_copilot.dataset import FimEncoder

    return FimEncoder(tokenizer)
