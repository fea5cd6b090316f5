"""The embedded default base model: a small Llama-style code model pretrained with FIM on the running interpreter's
standard library, through `pcopilot collect` and `pcopilot train` themselves.

It plays the part StarCoder plays in the blog (a general code model that has never seen *your* code), with no
download. It is built once per recipe and cached in the user cache directory:

```
~/.cache/personal_copilot/base/<key>/data/   the standard library as a collected dataset
~/.cache/personal_copilot/base/<key>/run/    the training run: the model, tokenizer, metrics, checkpoints
~/.cache/personal_copilot/base/<key>/base.json   written last: the recipe and the held-out "general code" files
```
The key hashes the recipe and the Python version (whose standard library is the corpus). A build that is killed
resumes from its last checkpoint; a finished one is reused as is.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sysconfig
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from personal_copilot.configs import write_atomic

Profile = Literal["default", "test"]
BASE_FILE = "base.json"
STDLIB_EXCLUDES = (
    "test/*", "*/test/*", "*/tests/*", "idlelib/*", "turtledemo/*", "pydoc_data/*", "encodings/*", "ensurepip/*",
    "lib2to3/*", "tkinter/*", "distutils/*", "site-packages/*", "config-*/*",
)  # fmt: skip
"""Tests, generated tables and GUI demos are not the general code a base model should learn from."""


@dataclass(frozen=True)
class BaseRecipe:
    """How the base model is made; every field is part of the cache key."""

    model: str = "scratch:tiny"
    """At this compute (a few CPU minutes) a ~1M-parameter model on ~4M tokens beats a bigger one on fewer."""
    vocab_size: int = 4096
    seq_len: int = 256
    batch_size: int = 16
    max_steps: int = 1000
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    fim_rate: float = 0.5
    eval_fraction: float = 0.05
    seed: int = 0
    packages: tuple[str, ...] | None = None
    """Standard-library packages to learn from (None: all of it but STDLIB_EXCLUDES)."""


RECIPES: dict[Profile, BaseRecipe] = {
    "default": BaseRecipe(),
    "test": BaseRecipe(
        model="scratch:tiny",
        vocab_size=1024,
        seq_len=64,
        batch_size=4,
        max_steps=6,
        learning_rate=3e-3,
        warmup_steps=0,
        eval_fraction=0.2,
        packages=("json", "http", "logging", "urllib"),
    ),
}


@dataclass(frozen=True)
class BaseModel:
    """A built base: where its model is, the corpus it learned from, and the files it held out."""

    key: str
    model_dir: Path
    data_dir: Path
    recipe: BaseRecipe
    general_split: dict[str, Any]
    """The standard-library files (or packages) the base never trained on: `split_by`, `eval_files`, `eval_repos`.
    Loss on them is the offline stand-in for HumanEval's "general code"."""
    eval_loss: float | None
    build_seconds: float
    reused: bool


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "personal_copilot" / "base"


def recipe_key(recipe: BaseRecipe) -> str:
    """Changes whenever the recipe or the standard library (the Python version) changes."""
    document = json.dumps({"recipe": asdict(recipe), "python": platform.python_version()}, sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()[:12]


def _stdlib_sources(recipe: BaseRecipe) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if recipe.packages is None:
        return [str(stdlib)]
    return [str(stdlib / name) for name in recipe.packages if (stdlib / name).is_dir()]


def load_base(directory: Path) -> BaseModel | None:
    """The base built in `directory`, or None when it is not (completely) built."""
    path = directory / BASE_FILE
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    recipe = BaseRecipe(**{**info["recipe"], "packages": tuple(info["recipe"]["packages"] or ()) or None})
    return BaseModel(
        key=info["key"],
        model_dir=directory / "run",
        data_dir=directory / "data",
        recipe=recipe,
        general_split=info["general_split"],
        eval_loss=info["eval_loss"],
        build_seconds=info["build_seconds"],
        reused=True,
    )


def replay_file(base: BaseModel) -> Path:
    """A Parquet file of the standard-library files the base trained on (its held-out files left out), written once
    beside the base: what a fine-tune mixes in to keep general code without touching the general-code test set."""
    import pyarrow.parquet as pq

    from personal_copilot.dataset import DatasetSplit, list_shards

    path = base.data_dir.parent / "replay.parquet"
    if path.is_file():
        return path
    split = base.general_split
    held_out = DatasetSplit(
        split["split_by"],
        base.recipe.eval_fraction,
        base.recipe.seed,
        tuple(split["eval_repos"]),
        tuple(split["eval_files"]),
    )
    table = pq.read_table(list_shards(base.data_dir), columns=["repo_id", "file_path", "content"])
    keep = [
        held_out.side(r, f) == "train"
        for r, f in zip(table["repo_id"].to_pylist(), table["file_path"].to_pylist(), strict=True)
    ]
    partial = path.with_suffix(".partial")
    pq.write_table(table.filter(keep), partial)
    os.replace(partial, path)
    return path


def build_base(recipe: BaseRecipe, cache_dir: Path | None = None, rebuild: bool = False) -> BaseModel:
    """Returns the cached base of this recipe, building it first when needed (resuming a killed build)."""
    from personal_copilot.collect import CollectConfig, FilterConfig, run_collect
    from personal_copilot.train import OptimSettings, TrainConfig, run_train

    key = recipe_key(recipe)
    directory = (cache_dir or default_cache_dir()) / key
    if rebuild and (directory / BASE_FILE).exists():
        (directory / BASE_FILE).unlink()
    if (existing := load_base(directory)) is not None:
        return existing
    start = time.perf_counter()
    data = directory / "data"
    run_collect(
        CollectConfig(
            sources=_stdlib_sources(recipe),
            output=data,
            workers=max(1, min(4, os.cpu_count() or 1)),
            filters=FilterConfig(exclude=list(STDLIB_EXCLUDES)),
        )
    )
    run = directory / "run"
    train = TrainConfig(
        model=recipe.model,
        data=[str(data)],
        output=run,
        method="full",
        seq_len=recipe.seq_len,
        max_steps=recipe.max_steps,
        batch_size=recipe.batch_size,
        gradient_accumulation_steps=1,
        eval_fraction=recipe.eval_fraction,
        eval_steps=max(1, recipe.max_steps // 4),
        save_steps=max(1, recipe.max_steps // 10),
        save_total_limit=1,
        logging_steps=max(1, recipe.max_steps // 50),
        resume=run.is_dir() and any(run.glob("checkpoint-*")),
        seed=recipe.seed,
        precision="fp32",
        gradient_checkpointing=False,
        scratch_vocab_size=recipe.vocab_size,
        optim=OptimSettings(learning_rate=recipe.learning_rate, warmup_steps=recipe.warmup_steps),
    )
    train.fim.rate = recipe.fim_rate
    report = run_train(train)
    splits: list[dict[str, Any]] = report.data  # one data source: the standard library
    info = {
        "key": key,
        "recipe": asdict(recipe),
        "python": platform.python_version(),
        "general_split": {key: splits[0][key] for key in ("split_by", "eval_repos", "eval_files")},
        "eval_loss": report.eval_loss,
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    write_atomic(directory / BASE_FILE, json.dumps(info, indent=2) + "\n")
    built = load_base(directory)
    assert built is not None
    return replace(built, reused=False)
