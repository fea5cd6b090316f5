"""Held-out loss and perplexity: the mean next-token loss over the held-out rows, built as the trainer builds its eval
rows (documents packed with their position ids, a share of them FIM-transformed), and the same split into tokens
of plain documents and tokens of FIM documents. Given a training run and its eval row count, these are the rows
its trainer evaluated on; the loss is averaged over tokens (the trainer averages per batch, which weighs a token
slightly differently when rows have different numbers of scored tokens)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice
from typing import Any

from personal_copilot.dataset import IGNORE_INDEX, ExampleStream, FimConfig, FimEncoder, TrainingRow
from personal_copilot.evaluate.generation import Advance
from personal_copilot.evaluate.heldout import HeldOut


@dataclass(frozen=True)
class LossScores:
    """Mean next-token loss (nats) and perplexity over the scored tokens."""

    loss: float
    perplexity: float
    tokens: int
    plain_loss: float | None
    """Over the tokens of documents left as they are (None when every document was FIM-transformed)."""
    plain_tokens: int
    fim_loss: float | None
    """Over the tokens of FIM-transformed documents (None when none was)."""
    fim_tokens: int
    rows: int


def held_out_rows(
    held_out: HeldOut,
    encoder: FimEncoder,
    fim: FimConfig,
    *,
    seq_len: int,
    seed: int,
    repo_context: bool,
    max_rows: int,
) -> list[TrainingRow]:
    """The first `max_rows` packed rows of the held-out documents, exactly as the trainer's eval rows."""
    stream = ExampleStream(
        held_out.shards,
        encoder,
        fim,
        seq_len=seq_len,
        seed=seed,
        split=held_out.split,
        side="eval",
        repo_context=repo_context,
    )
    return list(islice(stream, max_rows))


def _is_fim_token(row: TrainingRow) -> list[bool]:
    """Per position of `row`: whether it belongs to a FIM-transformed document (segments start at position id 0)."""
    flags, segment = [], -1
    for position in row.position_ids:
        segment += position == 0
        source = row.sources[segment] if segment < len(row.sources) else None
        flags.append(source is not None and source[2] is not None)
    return flags


def score_rows(model: Any, rows: list[TrainingRow], batch_size: int, advance: Advance | None = None) -> LossScores:
    """Next-token loss of `model` on `rows`, summed per token and split by document kind."""
    import torch
    import torch.nn.functional as F

    sums = {True: 0.0, False: 0.0}
    counts = {True: 0, False: 0}
    device = next(model.parameters()).device
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        input_ids = torch.tensor([r.input_ids for r in batch], device=device)
        position_ids = torch.tensor([r.position_ids for r in batch], device=device)
        with torch.inference_mode():
            logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits
        for k, row in enumerate(batch):
            targets = torch.tensor(row.labels[1:], device=device)
            losses = F.cross_entropy(logits[k, :-1].float(), targets, ignore_index=IGNORE_INDEX, reduction="none")
            scored = targets != IGNORE_INDEX
            fim = torch.tensor(_is_fim_token(row)[1:], device=device)
            for is_fim, selected in ((True, scored & fim), (False, scored & ~fim)):
                sums[is_fim] += losses[selected].sum().item()
                counts[is_fim] += int(selected.sum())
        if advance is not None:
            advance(len(batch))
    tokens = counts[True] + counts[False]
    loss = (sums[True] + sums[False]) / max(tokens, 1)
    return LossScores(
        loss=loss,
        perplexity=math.exp(loss),
        tokens=tokens,
        plain_loss=sums[False] / counts[False] if counts[False] else None,
        plain_tokens=counts[False],
        fim_loss=sums[True] / counts[True] if counts[True] else None,
        fim_tokens=counts[True],
        rows=len(rows),
    )
