"""Building a base model from a recipe: corpus -> pretraining -> (measure, card, ship).

Each step leaves a marker written last, so a killed build resumes at the step it was in (pretraining from its last
checkpoint) and a finished step is never redone:

```
DIR/collected/        `pcopilot collect` of the standard library and the permissive packages (deduplicated)
DIR/corpus/           train.parquet, heldout_stdlib.parquet, heldout_packages.parquet, corpus.json (last)
DIR/run/              `pcopilot train` (full, scratch model, FIM): model, tokenizer, checkpoints, metrics, loss.png
DIR/run/legs/N.json   train's report of the leg that ended at step N (the recipe's `legs`, then `max_steps`)
```
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from personal_copilot.base.corpus import (
    PACKAGE_EXCLUDES,
    STDLIB_EXCLUDES,
    STDLIB_REPO,
    held_out_names,
    installed_packages,
    rank,
    stdlib_dir,
    stdlib_module,
)
from personal_copilot.base.recipe import BaseRecipe
from personal_copilot.configs import write_atomic

CORPUS_FILE = "corpus.json"
SPLITS = ("train", "heldout_stdlib", "heldout_packages")
LEGS_DIR = "legs"


@dataclass(frozen=True)
class Corpus:
    """The pretraining corpus on disk and what it is made of."""

    directory: Path
    info: dict[str, Any]

    def path(self, split: str) -> Path:
        return self.directory / f"{split}.parquet"


def _stdlib_sources(recipe: BaseRecipe) -> list[str]:
    root = stdlib_dir()
    if recipe.stdlib_modules is None:
        return [f"{STDLIB_REPO}={root}"]
    return [f"{STDLIB_REPO}:{name}={root / name}" for name in recipe.stdlib_modules if (root / name).is_dir()]


def build_corpus(recipe: BaseRecipe, directory: Path, workers: int) -> Corpus:
    """Collects, deduplicates and splits the corpus into `directory/corpus` (reused when already there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from personal_copilot.collect import CollectConfig, FilterConfig, run_collect
    from personal_copilot.dataset import list_shards

    out = directory / "corpus"
    if (out / CORPUS_FILE).is_file():
        return Corpus(out, json.loads((out / CORPUS_FILE).read_text()))
    packages = installed_packages() if recipe.packages else []
    used = [p for p in packages if p.permissive]
    held_packages = set(
        sorted((p.name for p in used), key=lambda name: rank(recipe.seed, name))[: recipe.heldout_packages]
    )
    folder_owner = {Path(folder).name: p.name for p in used for folder in p.folders}
    sources = _stdlib_sources(recipe) + [folder for p in used for folder in p.folders]
    collected = directory / "collected"
    report = run_collect(
        CollectConfig(
            sources=sources,
            output=collected,
            workers=workers,
            filters=FilterConfig(exclude=[*STDLIB_EXCLUDES, *PACKAGE_EXCLUDES]),
        )
    )
    table = pq.read_table(list_shards(collected), columns=["repo_id", "file_path", "content"])
    repo_ids, paths = table["repo_id"].to_pylist(), table["file_path"].to_pylist()
    stdlib_modules = sorted({stdlib_module(r, f) for r, f in zip(repo_ids, paths, strict=True) if _is_stdlib(r)})
    held_stdlib = set(held_out_names(stdlib_modules, recipe.heldout_stdlib_fraction, recipe.seed))
    sides: dict[str, list[int]] = {split: [] for split in SPLITS}
    for index, (repo_id, path) in enumerate(zip(repo_ids, paths, strict=True)):
        if not path.endswith(".py"):
            continue
        if _is_stdlib(repo_id):
            sides["heldout_stdlib" if stdlib_module(repo_id, path) in held_stdlib else "train"].append(index)
        else:
            sides["heldout_packages" if folder_owner.get(repo_id) in held_packages else "train"].append(index)
    random.Random(recipe.seed).shuffle(sides["train"])  # the tokenizer samples the first files; training streams them
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, rows in sides.items():
        part = table.take(pa.array(rows, type=pa.int64()))
        pq.write_table(part, out / f"{split}.parquet")
        counts[split] = {"files": len(rows), "bytes": sum(len(c.encode()) for c in part["content"].to_pylist())}
    info = {
        "recipe": asdict(recipe),
        "stdlib": str(stdlib_dir()),
        "packages": [asdict(p) | {"folders": [Path(f).name for f in p.folders]} for p in packages],
        "heldout_stdlib_modules": sorted(held_stdlib),
        "heldout_packages": sorted(held_packages),
        "splits": counts,
        "collect": {"files_kept": report.files_kept, "dropped": report.dropped, "secrets": report.secrets},
    }
    write_atomic(out / CORPUS_FILE, json.dumps(info, indent=2) + "\n")
    return Corpus(out, info)


def _is_stdlib(repo_id: str) -> bool:
    return repo_id == STDLIB_REPO or repo_id.startswith(f"{STDLIB_REPO}:")


def pretrain_config(recipe: BaseRecipe, corpus: Corpus, run: Path, max_steps: int | None = None) -> Any:
    """The recipe as a `pcopilot train` config: full training of a scratch model on the training split, with FIM,
    up to `max_steps` (the recipe's by default; a leg's end when it is trained in legs)."""
    steps = max_steps or recipe.max_steps
    scope = "file" if steps <= recipe.file_fim_until else "window"
    from personal_copilot.dataset import FimConfig
    from personal_copilot.train import OptimSettings, TrainConfig

    return TrainConfig(
        model=recipe.model,
        data=[str(corpus.path("train"))],
        output=run,
        method="full",
        seq_len=recipe.seq_len,
        max_steps=steps,
        batch_size=recipe.batch_size,
        gradient_accumulation_steps=1,
        eval_fraction=0.0,
        eval_steps=0,
        save_steps=max(1, recipe.max_steps // 20),
        save_total_limit=2,
        logging_steps=max(1, recipe.max_steps // 200),
        resume="auto",
        seed=recipe.seed,
        precision=pretraining_precision(recipe),
        gradient_checkpointing=False,
        scratch_vocab_size=recipe.vocab_size,
        optim=OptimSettings(
            learning_rate=recipe.learning_rate,
            warmup_steps=recipe.warmup_steps,
            weight_decay=recipe.weight_decay,
            optim="adamw_torch",
        ),
        fim=FimConfig(rate=recipe.fim_rate, span=recipe.fim_span, scope=scope),
        extra_training_args={"adam_beta2": recipe.adam_beta2},
    )


def pretraining_precision(recipe: BaseRecipe) -> str:
    """The recipe's precision; `auto` is bf16 autocast where the hardware computes in it, else fp32."""
    from personal_copilot.modeling import cpu_precision

    return cpu_precision() if recipe.precision == "auto" else recipe.precision


def pretrain(recipe: BaseRecipe, corpus: Corpus, run: Path) -> tuple[Any, float]:
    """Pretrains leg by leg (each resumes the last checkpoint with the cosine schedule stretched to its own end),
    reusing finished legs; returns the last leg's train report and the hours of all legs."""
    from personal_copilot.train import read_train_report, run_train

    seconds = 0.0
    for steps in (*recipe.legs, recipe.max_steps):
        record = run / LEGS_DIR / f"{steps}.json"
        if not record.is_file():
            run_train(pretrain_config(recipe, corpus, run, steps))
            record.parent.mkdir(exist_ok=True)
            write_atomic(record, (run / "report.json").read_text())
        seconds += json.loads(record.read_text())["seconds"]
    return read_train_report(run), seconds / 3600
