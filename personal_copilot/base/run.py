"""`pcopilot base build` and `pcopilot base show`.

pcopilot base build --recipe default --output base_build/   # hours on a CPU; resumable
pcopilot base show                                          # the shipped base: recipe, figures, sha256 check
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from personal_copilot.base.build import build_corpus, pretrain, pretraining_precision
from personal_copilot.base.card import render_card
from personal_copilot.base.config import BuildConfig, ShowConfig
from personal_copilot.base.measure import (
    Copying,
    examples_of,
    generation_speed,
    load_generator,
    measure_compression,
    measure_copying,
    measure_fim,
    measure_humaneval,
    read_texts,
)
from personal_copilot.base.recipe import RECIPES, BaseRecipe
from personal_copilot.base.shipped import RECORD, WEIGHTS, base_model_dir, read_base, sha256_of, shipped_dir
from personal_copilot.configs import honour_umask, write_atomic, write_report, write_run_config
from personal_copilot.console import print_summary, print_table, stdout

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


@dataclass
class BaseReport:
    """What a base model is and how it does on its held-out sets."""

    model_dir: str
    recipe: str
    parameters: int
    sha256: str
    sha256_ok: bool
    measurements: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0

    def print(self) -> None:
        training = self.training
        print_summary(
            "pcopilot base",
            [
                ("model", self.model_dir),
                ("recipe", self.recipe),
                ("parameters", f"{self.parameters:,}"),
                ("trained", f"{training.get('steps', 0):,} steps, {training.get('tokens_seen', 0):,} tokens, "
                            f"{training.get('hours', 0):.2f} h on {training.get('device', '?')}"),
                ("weights sha256", f"{self.sha256[:16]}… ({'matches the card' if self.sha256_ok else 'MISMATCH'})"),
            ],
        )  # fmt: skip
        compression = self.measurements.get("compression", {})
        if compression:
            print_table(
                "held-out bits per byte (lower is better)",
                ["set", "model", "gzip -9", "xz -9"],
                [(name, f"{c['model']:.3f}", f"{c['gzip']:.3f}", f"{c['xz']:.3f}") for name, c in compression.items()],
            )
        fim = self.measurements.get("fim", {})
        if fim:
            print_table(
                f"held-out fill-in-the-middle ({self.measurements.get('fim_layout', 'psm')} prompts)",
                ["hole kind", "holes", "exact match", "edit similarity"],
                [(k, f["holes"], f"{f['exact_match']:.3f}", f"{f['edit_similarity']:.3f}") for k, f in fim.items()],
            )
        if "copying" in self.measurements:
            copying = Copying(**self.measurements["copying"])
            stdout.print(
                f"in-context copying: {copying.first_read:.2f} nats/token on a first read of random tokens, "
                f"{copying.second_read:.2f} on the second ({'copies' if copying.copies else 'does not copy'})"
            )


def _device() -> str:
    """Where this process trains, in words (the model card's "trained on")."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def export_model(run: Path, model_dir: Path) -> int:
    """The trained model in bfloat16 with its tokenizer, as a plain Hugging Face folder; returns its size."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(run, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(model_dir)
    for name in TOKENIZER_FILES:
        if (run / name).is_file():
            shutil.copyfile(run / name, model_dir / name)
    if (run / "loss.png").is_file():
        shutil.copyfile(run / "loss.png", model_dir / "loss.png")
    for path in model_dir.iterdir():
        honour_umask(path)  # transformers writes its files through tempfile (0600)
    return sum(p.numel() for p in model.parameters())


HELD_OUT_SETS = {"standard library": "heldout_stdlib", "whole packages": "heldout_packages"}
"""The held-out sets by name in the card, and their split in the corpus."""


def measure(model_dir: Path, sets: dict[str, Path], seq_len: int, seed: int, config: BuildConfig) -> dict[str, Any]:
    """Every held-out figure of the model card, measured on the shipped (bfloat16) weights loaded in fp32: bits per
    byte on each set (Parquet files by name), FIM holes cut from the standard library's in both prompt layouts (the
    better one is the base's `fim_layout`), HumanEval, speed, in-context copying."""
    generator = load_generator(model_dir, context_tokens=seq_len)
    model, tokenizer = generator.model, generator.tokenizer
    compression = {}
    for name, parquet in sets.items():
        texts = read_texts(parquet, config.measure_bytes)
        if texts:
            compression[name] = measure_compression(model, tokenizer, texts, seq_len).__dict__
    by_layout = {}
    for layout in ("psm", "spm"):
        generator.layout = layout
        by_layout[layout] = measure_fim(generator, sets["standard library"], config.fim_holes, seed)
    best = max(by_layout, key=lambda k: (by_layout[k][0]["all"].exact_match, by_layout[k][0]["all"].edit_similarity))
    fim, results = by_layout[best]
    humaneval = None
    if config.humaneval_problems:
        out = config.output / "humaneval"
        humaneval = measure_humaneval(generator, config.humaneval_problems, config.workers, out)
    return {
        "compression": compression,
        "fim": {kind: figures.__dict__ for kind, figures in fim.items()},
        "fim_layout": best,
        "fim_by_layout": {layout: figures["all"].__dict__ for layout, (figures, _) in by_layout.items()},
        "fim_healed": generator.heal,
        "humaneval_pass_at_1": humaneval,
        "humaneval_problems": config.humaneval_problems,
        "generation_tokens_per_second": generation_speed(model, tokenizer),
        "copying": measure_copying(model, tokenizer).__dict__,
        "examples": examples_of(results),
    }


def _size_rationale(recipe: BaseRecipe, parameters: int, tokens: int, hours: float) -> str:
    return (
        f"{parameters / 1e6:.1f}M parameters saw {tokens / 1e6:.0f}M tokens ({tokens / parameters:.1f} per parameter) "
        f"in {hours:.1f} h. Measured on this CPU before training (bf16, batch 8×{recipe.seq_len}, other jobs on): "
        "~2.5k tokens/s at 6.8M parameters against ~0.7k at 12.6M and ~0.5k at 27.8M under the same load, so "
        "within a few CPU hours a bigger model would see under 2 tokens per parameter, far from the Chinchilla "
        "optimum of ~20; a smaller one (3–4M) would be closer to it but too shallow for fill-in-the-middle, which "
        "needs the suffix attended to from the middle. Six layers of 256 were the compromise."
    )


def run_build(config: BuildConfig) -> BaseReport:
    """Builds (or resumes, or finishes) a base model into `config.output` and returns its report."""
    recipe = RECIPES[config.recipe]
    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(recipe, out, config.workers)
    run = out / "run"
    train, hours = pretrain(recipe, corpus, run)
    model_dir = out / "model"
    model_dir.mkdir(exist_ok=True)
    parameters = export_model(run, model_dir)
    digest = sha256_of(model_dir / WEIGHTS)
    sets = {name: corpus.path(split) for name, split in HELD_OUT_SETS.items()}
    measurements = measure(model_dir, sets, recipe.seq_len, recipe.seed, config)
    training = {
        "steps": train.steps,
        "tokens_seen": train.tokens_seen,
        "train_loss": train.train_loss,
        "hours": round(hours, 3),
        "legs": [*recipe.legs, recipe.max_steps],
        "tokens_per_second": train.tokens_per_second,
        "device": _device(),
        "precision": pretraining_precision(recipe),
    }
    info = {
        "recipe_name": config.recipe,
        "parameters": parameters,
        "architecture": _architecture(model_dir),
        "vocab_size": _vocab_size(model_dir),
        "sha256": digest,
        "fim_layout": measurements["fim_layout"],
        "recipe": asdict(recipe),
        "corpus": {k: v for k, v in corpus.info.items() if k != "recipe"} | {"python": platform.python_version()},
        "training": training,
        "measurements": measurements,
        "size_rationale": _size_rationale(recipe, parameters, train.tokens_seen, training["hours"]),
        "built": time.strftime("%Y-%m-%d"),
    }
    write_atomic(model_dir / RECORD, json.dumps(info, indent=2) + "\n")
    write_atomic(model_dir / "README.md", render_card(info))
    if config.ship:
        _ship(model_dir)
    report = BaseReport(str(model_dir), config.recipe, parameters, digest, True, measurements, training)
    write_run_config(out, "base", config)
    write_report(out, report)
    return report


def _ship(model_dir: Path) -> None:
    target = shipped_dir()
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _architecture(model_dir: Path) -> str:
    config = json.loads((model_dir / "config.json").read_text())
    return (
        f"{config['model_type']}, {config['num_hidden_layers']} layers, hidden {config['hidden_size']}, "
        f"MLP {config['intermediate_size']} (SwiGLU), {config['num_attention_heads']} heads "
        f"({config['num_key_value_heads']} key/value), RoPE, tied embeddings"
    )


def _vocab_size(model_dir: Path) -> int:
    return json.loads((model_dir / "config.json").read_text())["vocab_size"]


def run_show(config: ShowConfig) -> BaseReport:
    """The default (or given) base: recipe, training, held-out figures, and a check of its weights' sha256."""
    model_dir = Path(config.model).expanduser() if config.model else base_model_dir()
    info = read_base(model_dir)
    digest = sha256_of(model_dir / WEIGHTS)
    return BaseReport(
        str(model_dir),
        info["recipe_name"],
        info["parameters"],
        digest,
        digest == info["sha256"],
        info["measurements"],
        info["training"],
        exit_code=0 if digest == info["sha256"] else 1,
    )
