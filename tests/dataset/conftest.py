"""Fixtures of the dataset-stage tests, built once per session and offline: four small generated repositories, the
dataset `pcopilot collect` makes of them (several shards), and a byte-level BPE tokenizer (StarCoder family, 1024
tokens) trained on it by `pcopilot tokenizer`'s function."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # a stray download fails fast instead of hanging
os.environ["PCOPILOT_PROGRESS"] = "0"

REPOS = ("alpha", "beta", "gamma", "delta")
_WORDS = ("value", "total", "index", "count", "items", "result", "name", "path", "data", "user", "config", "cache")
_UNICODE = ("héllo wörld", "日本語のコメント", "emoji 🙂 ok", "Ελληνικά", "naïve café")


def _function(rng: random.Random, depth: int = 1) -> str:
    pad = "    " * depth
    name = "_".join(rng.sample(_WORDS, 2))
    args = ", ".join(rng.sample(_WORDS, rng.randint(1, 3)))
    lines = [f"{pad[4:]}def {name}({args}):", f'{pad}"""{rng.choice(_UNICODE)}: {name}."""']
    for _ in range(rng.randint(2, 8)):
        a, b = rng.sample(_WORDS, 2)
        kind = rng.randrange(4)
        if kind == 0:
            lines += [f"{pad}if {a} > {rng.randint(0, 99)}:", f"{pad}    {b} = {a} * {rng.randint(2, 9)}"]
        elif kind == 1:
            lines += [f"{pad}for {a} in range({b}):", f"{pad}    {b} += {a}  # {rng.choice(_UNICODE)}"]
        elif kind == 2:
            lines.append(f'{pad}{a} = "{rng.choice(_UNICODE)}".upper()')
        else:
            lines.append(f"{pad}{a} = {b} + {rng.randint(0, 999)}")
    lines.append(f"{pad}return {rng.choice(_WORDS)}")
    return "\n".join(lines) + "\n"


def _python_file(rng: random.Random, functions: int) -> str:
    header = f'"""Module {rng.randint(0, 10**6)}: {rng.choice(_UNICODE)}."""\n\nimport os\nimport sys\n\n'
    return header + "\n\n".join(_function(rng) for _ in range(functions))


def _js_file(rng: random.Random) -> str:
    body = "\n".join(f"  const {w} = {rng.randint(0, 99)}; // {rng.choice(_UNICODE)}" for w in rng.sample(_WORDS, 5))
    return f"export function {rng.choice(_WORDS)}() {{\n{body}\n  return {rng.choice(_WORDS)};\n}}\n"


def write_repositories(root: Path) -> list[Path]:
    """Writes the four repositories under `root` (deterministic) and returns their folders."""
    folders = []
    for number, repo in enumerate(REPOS):
        rng = random.Random(number)
        folder = root / repo
        for i in range(10):
            path = folder / "src" / f"module_{i}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_python_file(rng, rng.randint(1, 6)), encoding="utf-8")
        (folder / "web" / "app.js").parent.mkdir(parents=True, exist_ok=True)
        (folder / "web" / "app.js").write_text(_js_file(rng), encoding="utf-8")
        folders.append(folder)
    (folders[0] / "src" / "long_module.py").write_text(_python_file(random.Random(99), 40), encoding="utf-8")
    sentinels = 'PROMPT = "<fim_prefix>" + prefix + "<fim_suffix>" + suffix + "<fim_middle>"  # <|endoftext|>\n'
    (folders[1] / "src" / "prompts.py").write_text(sentinels * 3, encoding="utf-8")
    return folders


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
