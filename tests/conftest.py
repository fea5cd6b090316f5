"""Shared fixtures: git repositories built in temp dirs, an environment with no network and no progress bars."""

from __future__ import annotations

import inspect
import os
import re
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


SLOW_FIXTURES = {"lora_run", "produce", "engine", "server", "gguf_f16", "tuned_model", "run_tokenizer", "qlora_run"}
"""Fixtures that train, serve or convert: a test using one is slow."""
SLOW_CALLS = re.compile(
    r"\b(run_train|run_export_gguf|run_compare|run_fim|run_loss|run_humaneval|run_quickstart|run_serve)\(|"
    r"TransformersEngine\.load|Sandbox\(|sys\.executable"
)
"""Calls that train, evaluate, serve, convert or start a Python process."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `slow` every test that trains, serves, converts or runs a subprocess (through a fixture or by itself),
    so that `pytest -m "not slow"` is a quick inner loop."""
    for item in items:
        function = getattr(item, "function", None)
        source = inspect.getsource(function) if function is not None else ""
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or SLOW_CALLS.search(source):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def tiny_models(tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Llama-style and a GPT-BigCode (StarCoder architecture) model of about half a million parameters, each saved
    with the session tokenizer, so `--model PATH` loads them like a hub model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPTBigCodeConfig, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    configs = {
        "llama": LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            tie_word_embeddings=True,
            **ids,
        ),
        "bigcode": GPTBigCodeConfig(
            vocab_size=len(tokenizer),
            n_embd=64,
            n_inner=128,
            n_layer=2,
            n_head=4,
            n_positions=512,
            multi_query=True,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **ids,
        ),
    }
    paths = {}
    for name, config in configs.items():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
        path = tmp_path_factory.mktemp(f"tiny-{name}")
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths[name] = path
    return paths


@pytest.fixture(scope="session")
def lora_run(tiny_models: dict[str, Path], collected: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `pcopilot train` run: a LoRA adapter (non-zero, 8 steps at a high learning rate) on the tiny
    Llama-style model, with its pcopilot_config.yaml, checkpoints and report; for the stages after training."""
    from personal_copilot.train import OptimSettings, TrainConfig, run_train

    output = tmp_path_factory.mktemp("lora-run")
    config = TrainConfig(
        model=str(tiny_models["llama"]),
        data=[str(collected)],
        output=output,
        seq_len=64,
        max_steps=8,
        batch_size=2,
        gradient_accumulation_steps=1,
        eval_steps=4,
        save_steps=8,
        logging_steps=2,
        gradient_checkpointing=False,
        precision="fp32",
        optim=OptimSettings(learning_rate=1e-2, warmup_steps=0),
    )
    assert run_train(config).exit_code == 0
    return output


@pytest.fixture(scope="session")
def test_base_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pcopilot base build --recipe test`, once per session: a tiny base model with its record and card in
    BUILD/model (tests that need "the default base" point PCOPILOT_BASE_MODEL at it)."""
    from personal_copilot.cli import main

    out = tmp_path_factory.mktemp("base") / "build"
    argv = ["base", "build", "--recipe", "test", "--output", str(out), "--workers", "1"]
    assert main([*argv, "--fim_holes", "6", "--humaneval_problems", "1", "--measure_bytes", "20000"]) == 0
    return out


@pytest.fixture
def test_base(test_base_build: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test base as the default base model of every stage."""
    monkeypatch.setenv("PCOPILOT_BASE_MODEL", str(test_base_build / "model"))
    return test_base_build / "model"
