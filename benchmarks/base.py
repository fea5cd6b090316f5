"""Benchmark of the default base model as a code model, on held-out code it never trained on, in one run:

    .venv/bin/python benchmarks/base.py                       # the shipped base (or $PCOPILOT_BASE_MODEL)
    .venv/bin/python benchmarks/base.py --holes 150 --humaneval 40

- bits per byte of the held-out standard-library modules and whole packages named in the base's record, collected
  here from this interpreter (so it runs anywhere), beside gzip -9 and xz -9 on the same bytes measured in the same
  run (per file, as the model sees files; and xz on the whole set);
- fill-in-the-middle exact match and edit similarity per hole kind (line, rest of line, block), and the share of
  completions after which the file still parses;
- token healing (docs/serve.md) against none: the same holes in the base's layout, each way, with wall times;
- HumanEval pass@1 (greedy, sandboxed);
- greedy generation tokens/s at batch 1, beside a forward pass over the same tokens (its upper bound).
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


def held_out_sets(record: dict, work: Path) -> dict[str, Path]:
    """The base's held-out standard-library modules and packages, collected from this interpreter (Parquet files)."""
    import pyarrow.parquet as pq

    from personal_copilot.base.corpus import PACKAGE_EXCLUDES, installed_packages
    from personal_copilot.collect import CollectConfig, FilterConfig, run_collect
    from personal_copilot.dataset import list_shards
    from personal_copilot.quickstart.general import general_code

    corpus = record["corpus"]
    sets = {"standard library": general_code(work / "stdlib", corpus["heldout_stdlib_modules"], 2).held_out}
    folders = [f for p in installed_packages() if p.name in corpus["heldout_packages"] for f in p.folders]
    if folders:
        out = work / "packages"
        run_collect(
            CollectConfig(sources=folders, output=out, workers=2, filters=FilterConfig(exclude=list(PACKAGE_EXCLUDES)))
        )
        table = pq.read_table(list_shards(out), columns=["repo_id", "file_path", "content"])
        python = [path.endswith(".py") for path in table["file_path"].to_pylist()]
        sets["whole packages"] = work / "packages.parquet"
        pq.write_table(table.filter(python), sets["whole packages"])
    return sets


def forward_tokens_per_second(model, tokenizer, tokens: int) -> float:
    import torch

    ids = torch.randint(0, len(tokenizer), (1, tokens))
    with torch.inference_mode():
        model(ids)
        start = time.perf_counter()
        model(ids)
    return tokens / (time.perf_counter() - start)


def print_figures(figures: dict, humaneval: int) -> None:
    """The held-out tables: bits per byte beside gzip and xz, FIM per hole kind, HumanEval, in-context copying."""
    print("\n| held-out set | bytes | model bits/byte | gzip -9 | xz -9 | xz -9 whole set | model / xz |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, c in figures["compression"].items():
        print(
            f"| {name} | {c['bytes']:,} | {c['model']:.3f} | {c['gzip']:.3f} | {c['xz']:.3f} "
            f"| {c['xz_whole_set']:.3f} | {c['model'] / c['xz']:.2f}× |"
        )
    print("\n| hole kind | holes | exact match | edit similarity | still parses |")
    print("|---|---:|---:|---:|---:|")
    for kind, f in figures["fim"].items():
        parses = "-" if f["parse_rate"] is None else f"{f['parse_rate']:.1%}"
        print(f"| {kind} | {f['holes']} | {f['exact_match']:.1%} | {f['edit_similarity']:.3f} | {parses} |")
    if humaneval:
        print(f"\nHumanEval pass@1 (greedy, {humaneval} problems): {figures['humaneval_pass_at_1']:.1%}")
    copying = figures["copying"]
    print(
        f"\nin-context copying ({copying['tokens']} random tokens read twice): second read / first read = "
        f"{copying['second_read'] / copying['first_read']:.2f}× the nats per token (a model that copies: near 0)"
    )


def healing_effect(model_dir: Path, stdlib: Path, holes: int, layout: str, seq_len: int) -> None:
    """Prints FIM on the same holes with token healing and without, and the time each took."""
    from personal_copilot.base.measure import load_generator, measure_fim

    print(f"\n| {layout.upper()} prompts | exact match | rest of line | edit similarity | still parses | time |")
    print("|---|---:|---:|---:|---:|---:|")
    seconds = {}
    generator = load_generator(model_dir, context_tokens=seq_len)
    generator.layout = layout
    for healed in (False, True):
        generator.heal = healed
        start = time.perf_counter()
        figures, _ = measure_fim(generator, stdlib, holes, 0)
        seconds[healed] = time.perf_counter() - start
        f, rest = figures["all"], figures.get("rest_of_line")
        print(
            f"| {'healed' if healed else 'not healed'} | {f.exact_match:.1%} | "
            f"{rest.exact_match if rest else 0:.1%} | {f.edit_similarity:.3f} | {f.parse_rate or 0:.1%} | "
            f"{seconds[healed]:.0f} s ({seconds[healed] / seconds[False]:.2f}×) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="base model folder (default: the shipped one)")
    parser.add_argument("--bytes", type=int, default=1_000_000, help="bytes of each held-out set (0: all)")
    parser.add_argument("--holes", type=int, default=300, help="FIM holes")
    parser.add_argument("--humaneval", type=int, default=164, help="HumanEval problems (0: skip)")
    args = parser.parse_args()

    from personal_copilot.base import base_model_dir
    from personal_copilot.base.config import BuildConfig
    from personal_copilot.base.measure import load_generator
    from personal_copilot.base.run import measure, read_base

    model_dir = args.model or base_model_dir()
    record = read_base(model_dir)
    seq_len = record["recipe"]["seq_len"]
    print(f"base: {model_dir} ({record['parameters'] / 1e6:.1f}M parameters, python {sysconfig.get_python_version()})")
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        settings = BuildConfig(
            output=work_dir,
            workers=2,
            measure_bytes=args.bytes,
            fim_holes=args.holes,
            humaneval_problems=args.humaneval,
        )
        sets = held_out_sets(record, work_dir)
        figures = measure(model_dir, sets, seq_len, 0, settings)
        print_figures(figures, args.humaneval)
        healing_effect(model_dir, sets["standard library"], args.holes, figures["fim_layout"], seq_len)
    generator = load_generator(model_dir, context_tokens=seq_len)
    generated = figures["generation_tokens_per_second"]
    forward = forward_tokens_per_second(generator.model, generator.tokenizer, 128)
    print(f"generation: {generated:.0f} tokens/s greedy at batch 1 = {generated / forward:.2f}× a forward pass "
          f"over 128 tokens ({forward:.0f} tokens/s)")  # fmt: skip


if __name__ == "__main__":
    main()
