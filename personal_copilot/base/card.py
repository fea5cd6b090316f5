"""The base model's card (README.md in its folder): data and licenses, recipe, training, held-out figures, sha256."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from personal_copilot.base.measure import Copying


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _legs_line(legs: list[int], file_fim_until: int) -> str:
    """How a base trained in legs got there: each leg resumed the last with the cosine schedule stretched."""
    if len(legs) < 2:
        return ""
    stretches = ", then ".join(
        f"resumed at step {start:,} with the schedule stretched to {end:,}" for start, end in pairwise(legs)
    )
    scope = (
        f"; FIM examples were whole files up to step {file_fim_until:,} and row-sized pieces of files after it"
        if 0 < file_fim_until < legs[-1]
        else ""
    )
    return (
        f"- trained in legs: steps 0–{legs[0]:,} with a cosine schedule ending there, {stretches} (the learning rate "
        f"jumping back to the stretched schedule's value at that step, as in a warm restart){scope}\n"
    )


def _copying_line(figures: dict[str, Any] | None) -> str:
    if figures is None:
        return ""
    copying = Copying(**figures)
    said = (
        "it copies from what it has read"
        if copying.copies
        else "it has not learned to copy from what it has read (no induction heads yet), which everyday completions "
        "such as `self.name = name` (a name read a line above) need"
    )
    return (
        f"\nIn-context copying ({copying.sequences} sequences of {copying.tokens} random tokens, each read twice): "
        f"{copying.first_read:.2f} nats/token on the first read, {copying.second_read:.2f} on the second: {said}."
    )


def render_card(info: dict[str, Any]) -> str:
    """Markdown of the card from the base's record (`base.json`)."""
    corpus, training, figures = info["corpus"], info["training"], info["measurements"]
    recipe = info["recipe"]
    used = [p for p in corpus["packages"] if p["permissive"]]
    left_out = [p for p in corpus["packages"] if not p["permissive"]]
    compression = _table(
        ["held-out set", "files", "bytes", "model bits/byte", "gzip -9", "xz -9", "xz -9 (whole set)", "nats/token"],
        [
            [name, c["files"], f"{c['bytes']:,}", f"**{c['model']:.3f}**", f"{c['gzip']:.3f}", f"{c['xz']:.3f}",
             f"{c['xz_whole_set']:.3f}", f"{c['nats_per_token']:.3f}"]
            for name, c in figures["compression"].items()
        ],
    )  # fmt: skip
    fim = _table(
        ["hole kind", "holes", "exact match", "edit similarity", "still parses"],
        [
            [kind, f["holes"], _pct(f["exact_match"]), f"{f['edit_similarity']:.3f}", _pct(f["parse_rate"])]
            for kind, f in figures["fim"].items()
        ],
    )
    layout = info.get("fim_layout", "psm")
    others = "; ".join(
        f"{name.upper()}: exact match {_pct(f['exact_match'])}, edit similarity {f['edit_similarity']:.3f}"
        for name, f in figures.get("fim_by_layout", {}).items()
    )
    examples = "\n\n".join(
        f"**{e['kind']}** in `{e['file']}`\n\n```python\n{e['before']}\n```\n"
        f"truth: `{e['truth'].strip()}`  \nmodel: `{e['completion'].strip()}`"
        for e in figures["examples"]
    )
    splits = corpus["splits"]
    held_modules = ", ".join(corpus["heldout_stdlib_modules"])
    held_packages = ", ".join(corpus["heldout_packages"]) or "none"
    humaneval = figures["humaneval_pass_at_1"]
    healed = ", token-healed prompts as the server builds them" if figures.get("fim_healed") else ""
    return f"""---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
tags: [code, fill-in-the-middle, personal-copilot]
---

# personal-copilot base ({info["parameters"] / 1e6:.1f}M parameters)

The default base model of [personal-copilot](https://pypi.org/project/personal-copilot/): a small Llama-style code
model with StarCoder's FIM sentinels (`<fim_prefix>`, `<fim_suffix>`, `<fim_middle>`), pretrained from scratch on
permissively licensed Python with fill-in-the-middle, so the quickstart can tune and serve a model with nothing to
download. It is a demo-sized model, trained for {training["hours"]:.1f} hours on {training["device"]}: the figures
below, measured on code it never saw, say what it can and cannot do.

- architecture: {info["architecture"]}
- context: {recipe["seq_len"]} tokens; vocabulary: {info["vocab_size"]} (byte-level BPE trained on the corpus)
- weights: `model.safetensors`, bfloat16, sha256 `{info["sha256"]}`

## Held-out figures

Measured on files it never trained on: a slice of the standard library (whole modules: {held_modules}) and whole
packages ({held_packages}). Bits per byte count every token of each file once, left to right, in windows of
{recipe["seq_len"]} tokens sliding by half a window (each token predicted from at least {recipe["seq_len"] // 2} tokens
before it, or all of them near the file's start); gzip and xz compress each file on its own, as the model sees each
file alone (and xz the whole set at once, a harder baseline).

{compression}

Fill in the middle (greedy{healed}, holes cut where an editor asks: a whole line, the rest of a line, a block), in the
prompt layout it does best in, {layout.upper()}, which `pcopilot serve` and `pcopilot eval` use for it unless told
otherwise ({others}):

{fim}

HumanEval pass@1 (greedy, {figures["humaneval_problems"]} problems, sandboxed): {_pct(humaneval)}.
Generation: {figures["generation_tokens_per_second"]} tokens/s (greedy, batch 1, {training["device"]}).
{_copying_line(figures.get("copying"))}

## Examples (the first holes of each kind, not chosen)

{examples}

## Training

- data: the Python {corpus["python"]} standard library ({corpus["stdlib"]}, tests and GUI demos excluded) and
  {len(used)} permissively licensed packages installed beside it, collected and deduplicated by `pcopilot collect`
  (exact and MinHash near-duplicates, secrets redacted), `.py` files only: {splits["train"]["files"]:,} files,
  {splits["train"]["bytes"] / 1e6:.1f} MB for training; held out: {splits["heldout_stdlib"]["files"]} standard-library
  files, {splits["heldout_packages"]["files"]} package files.
- recipe `{info["recipe_name"]}`: {", ".join(f"{k}={v}" for k, v in recipe.items())}
- {training["steps"]:,} steps, {training["tokens_seen"]:,} tokens, {training["hours"]:.2f} hours on
  {training["device"]} ({training["precision"]}); final training loss {training["train_loss"]:.3f}
{_legs_line(training.get("legs", []), recipe.get("file_fim_until", 0))}- why this size: {info["size_rationale"]}

![pretraining loss](loss.png)

Rebuild it: `pcopilot base build --recipe {info["recipe_name"]} --output base_build/` (resumable).

## Packages learned from

{_table(["package", "version", "license"], [[p["name"], p["version"], p["license"]] for p in used])}

Left out: {"; ".join(f"{p['name']} ({p['reason']})" for p in left_out) or "none"}.
"""
