"""Benchmark of `pcopilot train` against a plain transformers Trainer on the same model and data, in the same run.

    .venv/bin/python benchmarks/train.py                   # tiny and ~20M models, LoRA and full, seq 512
    .venv/bin/python benchmarks/train.py --models tiny --steps 10

Data: a slice of the running interpreter's standard library collected with `pcopilot collect` (present on every
machine, no network). For each model (`scratch:tiny`, `scratch:small` ≈ 20M parameters) and method (LoRA, full):

- `pcopilot train`: `run_train` with FIM on the fly (streamed, packed to --seq_len), its callbacks and plots;
- `plain Trainer`: `transformers.Trainer` with the same initial weights (the run's saved base), the same packed rows
  materialised in a list beforehand, the same batch, learning rate and precision, no callbacks of ours.

Both report tokens / `train_runtime`. The ratio is ours / plain (goal ≥ 1.0). MFU = 6·N·tokens/s (N = the model's
parameters: the backward pass runs through all of them even for LoRA) over the fp32 matmul peak measured in the
same run (torch.matmul on 2048² matrices).
"""

from __future__ import annotations

import argparse
import os
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PCOPILOT_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

STDLIB_PACKAGES = ("asyncio", "email", "json", "logging", "unittest", "http", "importlib")


def matmul_peak_flops(size: int = 2048, repeats: int = 10) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def collect_stdlib(out: Path) -> Path:
    from personal_copilot.collect import CollectConfig, run_collect

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = [str(stdlib / name) for name in STDLIB_PACKAGES if (stdlib / name).is_dir()]
    run_collect(CollectConfig(sources=sources, output=out, workers=2, cache_dir=out.parent / "clones"))
    return out


def train_ours(model: str, method: str, data: Path, out: Path, args: argparse.Namespace):
    from personal_copilot.train import LoraSettings, OptimSettings, TrainConfig, run_train

    config = TrainConfig(
        model=model,
        data=[str(data)],
        output=out,
        method=method,
        seq_len=args.seq_len,
        max_steps=args.steps,
        batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        eval_fraction=0.05,
        eval_steps=0,
        save_steps=args.steps + 1,
        logging_steps=max(1, args.steps // 4),
        gradient_checkpointing=False,
        precision="fp32",
        lora=LoraSettings(r=16, alpha=32),
        optim=OptimSettings(learning_rate=1e-3, warmup_steps=0),
    )
    return run_train(config)


def train_plain(run: Path, method: str, data: Path, args: argparse.Namespace) -> tuple[float, int]:
    """A plain Trainer on the same base weights and the same packed rows; returns (tokens/s, parameters)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, default_data_collator

    from personal_copilot.dataset import (
        ExampleStream,
        FimConfig,
        FimEncoder,
        list_shards,
        read_document_sizes,
        split_documents,
    )

    tokenizer = AutoTokenizer.from_pretrained(run / "base")
    model = AutoModelForCausalLM.from_pretrained(run / "base")
    parameters = sum(p.numel() for p in model.parameters())
    model.config.use_cache = False
    if method == "lora":
        model = get_peft_model(
            model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
        )
    shards = list_shards(data)
    split = split_documents(read_document_sizes(shards), 0.05, 0)
    stream = ExampleStream(shards, FimEncoder(tokenizer), FimConfig(), seq_len=args.seq_len, split=split)
    rows = []
    for row in stream:
        rows.append({"input_ids": row.input_ids, "labels": row.labels, "position_ids": row.position_ids})
        if len(rows) == args.steps * args.batch_size:
            break
    training = TrainingArguments(
        output_dir=str(run / "plain"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=1e-3,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=max(1, args.steps // 4),
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=training, train_dataset=rows, data_collator=default_data_collator)
    runtime = trainer.train().metrics["train_runtime"]
    return args.steps * args.batch_size * args.seq_len / runtime, parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "small"], help="scratch presets to train")
    parser.add_argument("--methods", nargs="+", default=["lora", "full"], help="training methods")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per run")
    parser.add_argument("--batch_size", type=int, default=4, help="rows per step")
    parser.add_argument("--seq_len", type=int, default=512, help="tokens per row")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    peak = matmul_peak_flops()
    print(f"fp32 matmul peak: {peak / 1e9:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        data = collect_stdlib(Path(tmp) / "data")
        header = (
            f"{'model':<8} {'method':<6} {'params':>11} {'ours tok/s':>11} {'plain tok/s':>12} {'ratio':>6} {'MFU':>6}"
        )
        print(header)
        print("-" * len(header))
        for model in args.models:
            for method in args.methods:
                out = Path(tmp) / f"{model}-{method}"
                ours = train_ours(f"scratch:{model}", method, data, out, args)
                plain, parameters = train_plain(out, method, data, args)
                mfu = 6 * parameters * ours.tokens_per_second / peak
                print(
                    f"{model:<8} {method:<6} {parameters:>11,} {ours.tokens_per_second:>11,.0f} {plain:>12,.0f} "
                    f"{ours.tokens_per_second / plain:>6.2f} {mfu:>6.1%}"
                )


if __name__ == "__main__":
    main()
