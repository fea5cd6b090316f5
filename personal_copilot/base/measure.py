"""A base model measured as a code model is measured, on the held-out sets it never trained on:

- bits per byte of plain left-to-right code (tokenizer-independent), beside gzip -9 and xz -9 on the same bytes;
- fill-in-the-middle exact match and edit similarity per hole kind, and the share of completions that still parse;
- HumanEval pass@1 (greedy), run in the evaluation sandbox;
- in-context copying: whether it predicts what it has already read (the induction test);
- generation speed (tokens/s, greedy, batch 1).
"""

from __future__ import annotations

import gzip
import lzma
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOLE_KINDS = ("line", "rest_of_line", "block")


@dataclass(frozen=True)
class Compression:
    """How well a held-out set is compressed: by the model and by general-purpose compressors, in bits per byte."""

    files: int
    bytes: int
    tokens: int
    nats_per_token: float
    model: float
    gzip: float
    xz: float
    xz_whole_set: float
    """xz -9 of all the files concatenated (it may reuse what it saw in one file in the next; the model cannot)."""


@dataclass(frozen=True)
class Copying:
    """Loss on sequences of random tokens read twice (the induction test of Olsson et al., 2022). A model that copies
    from its context scores far lower on the second read; everyday completions such as `self.name = name` need
    that."""

    sequences: int
    tokens: int
    """Length of each random sequence (read twice)."""
    first_read: float
    """Nats per token on the first read (random: about ln(vocabulary) or more)."""
    second_read: float
    """Nats per token on the second read (near 0 for a model that copies)."""

    @property
    def copies(self) -> bool:
        return self.second_read < self.first_read / 2


@dataclass(frozen=True)
class FimFigures:
    holes: int
    exact_match: float
    edit_similarity: float
    parse_rate: float | None


def read_texts(parquet: Path, max_bytes: int) -> list[str]:
    """The files of a held-out set in (repository, path) order, up to `max_bytes` of UTF-8 (0: all)."""
    import pyarrow.parquet as pq

    table = pq.read_table(parquet, columns=["repo_id", "file_path", "content"]).to_pylist()
    texts, total = [], 0
    for row in sorted(table, key=lambda r: (r["repo_id"], r["file_path"])):
        if max_bytes and total >= max_bytes:
            break
        texts.append(row["content"])
        total += len(row["content"].encode())
    return texts


def compressor_bits_per_byte(texts: list[str]) -> tuple[float, float, float]:
    """Bits per byte of gzip -9 and xz -9, each file compressed on its own as the model sees each alone, and of
    xz -9 on all the files concatenated."""
    raw = [t.encode() for t in texts]
    size = sum(map(len, raw))
    gz = sum(len(gzip.compress(b, compresslevel=9)) for b in raw)
    xz = sum(len(lzma.compress(b, preset=9)) for b in raw)
    whole = len(lzma.compress(b"".join(raw), preset=9))
    return 8 * gz / size, 8 * xz / size, 8 * whole / size


def model_nats(model: Any, tokenizer: Any, texts: list[str], seq_len: int, batch_size: int = 8) -> tuple[float, int]:
    """Total negative log-likelihood (nats) of every token of every text, left to right, and the token count.

    Each text starts after an end-of-text token (as documents follow each other in training) and is read in windows
    of `seq_len` that slide by half a window: each token is predicted once, from at least half a window of the tokens
    before it (all of them near a file's start), as a reader that cannot hold a whole file keeps its recent part.
    """
    import torch

    eos = tokenizer.eos_token_id
    windows: list[tuple[list[int], int]] = []  # (tokens, predictions already made by the window before)
    carried = seq_len // 2
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids, start, skip = [eos, *ids], 0, 0
        while True:
            windows.append((ids[start : start + seq_len + 1], skip))
            end = start + seq_len + 1
            if end >= len(ids):
                break
            start, skip = end - 1 - carried, carried
    windows.sort(key=lambda window: len(window[0]))
    total, count = 0.0, 0
    with torch.inference_mode():
        for first in range(0, len(windows), batch_size):
            batch = windows[first : first + batch_size]
            width = max(len(tokens) for tokens, _ in batch)
            ids = torch.full((len(batch), width), eos, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            scored = torch.zeros((len(batch), width - 1), dtype=torch.bool)
            for row, (tokens, skip) in enumerate(batch):
                ids[row, : len(tokens)] = torch.tensor(tokens)
                mask[row, : len(tokens)] = 1
                scored[row, skip : len(tokens) - 1] = True
            logits = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1]).logits.float()
            losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
            total += losses[scored].sum().item()
            count += int(scored.sum())
    return total, count


def measure_compression(model: Any, tokenizer: Any, texts: list[str], seq_len: int) -> Compression:
    nats, tokens = model_nats(model, tokenizer, texts, seq_len)
    size = sum(len(t.encode()) for t in texts)
    gz, xz, whole = compressor_bits_per_byte(texts)
    return Compression(
        files=len(texts),
        bytes=size,
        tokens=tokens,
        nats_per_token=round(nats / max(tokens, 1), 4),
        model=round(nats / math.log(2) / size, 4),
        gzip=round(gz, 4),
        xz=round(xz, 4),
        xz_whole_set=round(whole, 4),
    )


def measure_copying(model: Any, tokenizer: Any, sequences: int = 16, tokens: int = 100, seed: int = 0) -> Copying:
    """`Copying` of `sequences` random sequences of `tokens` ordinary (not special) tokens."""
    import torch

    special = set(tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in special])
    picks = torch.randint(len(ordinary), (sequences, tokens), generator=torch.Generator().manual_seed(seed))
    ids = ordinary[picks].repeat(1, 2)
    with torch.inference_mode():
        logits = model(input_ids=ids[:, :-1]).logits.float()
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    # losses[:, j] predicts ids[:, j + 1]; the first token of each read cannot be predicted, so neither is scored
    first, second = losses[:, : tokens - 1], losses[:, tokens:]
    return Copying(sequences, tokens, round(first.mean().item(), 3), round(second.mean().item(), 3))


def generation_speed(model: Any, tokenizer: Any, new_tokens: int = 128) -> float:
    """Greedy tokens/s at batch 1 with the KV cache, after one warm-up call."""
    import torch

    ids = torch.tensor([tokenizer("def fibonacci(n):\n    ")["input_ids"]])
    eos = tokenizer.eos_token_id
    options = {"do_sample": False, "pad_token_id": eos, "eos_token_id": None, "min_new_tokens": new_tokens}
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=8, **options | {"min_new_tokens": 8})
        start = time.perf_counter()
        model.generate(ids, max_new_tokens=new_tokens, **options)
    return round(new_tokens / (time.perf_counter() - start), 1)


def load_generator(model_dir: Path, context_tokens: int) -> Any:
    """The evaluation stage's generator over a base model folder, in fp32."""
    from personal_copilot.evaluate import ModelGenerator, ModelSpec, load_for_eval

    loaded = load_for_eval(ModelSpec(base=str(model_dir), tokenizer=str(model_dir)), "fp32")
    return ModelGenerator(loaded, batch_size=8, context_tokens=context_tokens)


def measure_fim(generator: Any, parquet: Path, holes: int, seed: int) -> tuple[dict[str, FimFigures], list[Any]]:
    """FIM figures per hole kind (and `all`) on holes cut from the files of a held-out set; and the scored holes."""
    import pyarrow.parquet as pq

    from personal_copilot.dataset import DatasetSplit
    from personal_copilot.evaluate import HeldOut, breakdown, generate_middles, make_tasks, score_holes

    repos = tuple(sorted(set(pq.read_table(parquet, columns=["repo_id"])["repo_id"].to_pylist())))
    held_out = HeldOut(parquet, [parquet], DatasetSplit("repository", 1.0, seed, eval_repos=repos), "held out")
    tasks, _ = make_tasks(held_out, holes, HOLE_KINDS, seed)
    results = score_holes(tasks, generate_middles(tasks, generator, max_new_tokens=64))
    scores = breakdown(results, lambda r: "all") | breakdown(results, lambda r: r.task.kind)
    figures = {
        kind: FimFigures(s.holes, round(s.exact_match, 4), round(s.edit_similarity, 4), _round(s.parse_rate))
        for kind, s in scores.items()
    }
    return figures, results


def measure_humaneval(generator: Any, problems: int, workers: int, out: Path) -> float:
    """Greedy pass@1 on the first `problems` HumanEval problems, run in the evaluation sandbox."""
    from personal_copilot.evaluate import HumanEvalSettings, evaluate_humaneval, open_sandbox

    settings = HumanEvalSettings(limit=problems, max_new_tokens=128, workers=workers)
    with open_sandbox(settings) as sandbox:
        report = evaluate_humaneval(generator, settings, sandbox, out, seed=0)
    return report.pass_at_k["pass@1"]


def examples_of(results: list[Any], count: int = 6) -> list[dict[str, str]]:
    """A few holes of each kind with the model's middle, the first of each kind in order (no cherry-picking)."""
    chosen: list[Any] = []
    for kind in HOLE_KINDS:
        chosen += [r for r in results if r.task.kind == kind][: max(1, count // len(HOLE_KINDS))]
    return [
        {
            "kind": r.task.kind,
            "file": f"{r.task.repo_id}/{r.task.file_path}",
            "before": "\n".join(r.task.prefix.splitlines()[-4:]),
            "truth": r.task.middle,
            "completion": r.generated,
            "after": "\n".join(r.task.suffix.splitlines()[:2]),
        }
        for r in chosen
    ]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
