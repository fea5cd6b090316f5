"""Fill-in-the-middle transforms: per document, whether it becomes a FIM example, in which layout, and where the middle
is; then the document's token ids in that layout.

Every choice comes from a random generator seeded by (seed, epoch, repo_id, file_path), drawn in a fixed order, so a
document gets the same example whatever the batch, the worker process or the shard order it is read in. The property
the tests hold this to: removing the sentinels and moving the middle back between prefix and suffix gives back the
document's tokens (and text) exactly, for every layout, level and span strategy.

- level `char`: the text is cut and each part tokenized on its own (no token straddles a cut; the model sees the
  same token boundary at the cursor as when it is served a prompt). level `token`: the document's ids are cut.
- span `uniform`: two cut points drawn uniformly (Bavarian et al. 2022; the original blog). span `line`: one of four
  editor-like middles, equally likely: part of a line, the rest of a line from the cursor, 1-8 whole lines, or a
  line with the indented block under it.
- scope `window`: a file longer than a training row is first cut at line starts into pieces that fit one, and each
  piece draws its own layout and span (its generator also keyed by the piece's number), so a FIM example never
  spans rows: in a whole-file PSM example of a long file the middle lands thousands of tokens after its prefix,
  and a model trained on those learns only the SPM layout. Consecutive plain pieces stay one plain document.
"""

from __future__ import annotations

import hashlib
import random
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from personal_copilot.dataset.config import FimConfig
from personal_copilot.dataset.encoder import FimEncoder
from personal_copilot.dataset.families import Layout
from personal_copilot.dataset.reader import Document

SpanStrategy = Literal["uniform", "line"]
_MAX_WHOLE_LINES = 8
_MAX_BLOCK_LINES = 64
ROW_ROOM = 16
"""Tokens a window-sized piece leaves free in its row: the three FIM sentinels, end-of-text, and the few tokens more
that tokenizing the prefix, middle and suffix apart can give."""


@dataclass(frozen=True, slots=True)
class EncodedDocument:
    """A document as token ids, FIM-transformed or not (no end-of-text yet: packing adds it)."""

    repo_id: str
    file_path: str
    layout: Layout | None
    """`psm` or `spm` for a FIM example, None for a plain left-to-right document."""
    input_ids: list[int]
    piece: int = 0
    """Which window-sized piece of its file this is (0: the first, or the whole file)."""
    end_of_text: bool = True
    """Followed by end-of-text in a row: a FIM example (a model learns to stop after the middle), or a file's end."""


def document_rng(seed: int, repo_id: str, file_path: str, epoch: int = 0, piece: int = 0) -> random.Random:
    """The random generator of one document (or of one of its pieces): a function of the seed, the epoch and the
    document's identity only. The first piece's is the whole document's, so a file that fits a row is unchanged."""
    key = f"{seed}\x00{epoch}\x00{repo_id}\x00{file_path}" + (f"\x00{piece}" if piece else "")
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))


def window_pieces(text: str, token_starts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Character spans cutting `text` into consecutive pieces of at most about `budget` tokens, at line starts (or,
    where one line alone is longer, at a token start). `token_starts`: the character where each of the text's tokens
    starts (byte-level tokens of one character share it)."""
    spans, start, first = [], 0, 0
    if len(token_starts) > budget:
        line_starts = [0, *(match.end() for match in re.finditer("\n", text))]
        while len(token_starts) - first > budget:
            limit = token_starts[first + budget]
            line_start = line_starts[bisect_right(line_starts, limit) - 1]
            end = line_start if line_start > start else limit
            if end <= start:  # the budget's tokens all start at one character (the bytes of an emoji)
                after = bisect_right(token_starts, start)
                end = token_starts[after] if after < len(token_starts) else len(text)
            spans.append((start, end))
            start, first = end, bisect_left(token_starts, end)
    if start < len(text) or not spans:
        spans.append((start, len(text)))
    return spans


def choose_layout(rng: random.Random, config: FimConfig) -> Layout | None:
    """None (no FIM), `psm` or `spm`; always draws twice so later draws do not depend on the rates."""
    fim, spm = rng.random(), rng.random()
    if fim >= config.rate:
        return None
    return "spm" if spm < config.spm_rate else "psm"


def _line_bounds(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, the end before its newline."""
    bounds, start = [], 0
    while (newline := text.find("\n", start)) != -1:
        bounds.append((start, newline))
        start = newline + 1
    if start < len(text):
        bounds.append((start, len(text)))
    return bounds


def _indent(text: str, start: int, end: int) -> int:
    line = text[start:end]
    return len(line) - len(line.lstrip(" \t"))


def _line_span(text: str, rng: random.Random) -> tuple[int, int]:
    lines = _line_bounds(text)
    filled = [i for i, (start, end) in enumerate(lines) if text[start:end].strip()]
    if not filled:
        return choose_span(text, rng, "uniform")
    kind = rng.randrange(4)
    i = rng.choice(filled)
    start, end = lines[i]
    if kind == 0:  # part of a line
        a = rng.randint(start, end - 1)
        return a, rng.randint(a + 1, end)
    if kind == 1:  # the rest of a line from the cursor
        return rng.randint(start, end - 1), end
    if kind == 2:  # whole lines
        last = i + rng.randint(1, min(_MAX_WHOLE_LINES, len(lines) - i)) - 1
    else:  # a line and the block indented under it
        indent, last, j = _indent(text, start, end), i, i + 1
        while j < len(lines) and j - i < _MAX_BLOCK_LINES:
            line_start, line_end = lines[j]
            if text[line_start:line_end].strip():
                if _indent(text, line_start, line_end) <= indent:
                    break
                last = j
            j += 1
    line_end = lines[last][1]
    return start, min(line_end + 1, len(text))


def _uniform_cuts(length: int, rng: random.Random) -> tuple[int, int]:
    a, b = rng.randint(0, length), rng.randint(0, length)
    return (a, b) if a <= b else (b, a)


def choose_span(text: str, rng: random.Random, span: SpanStrategy) -> tuple[int, int]:
    """Character offsets (start, end) of the middle of `text`, with 0 <= start <= end <= len(text)."""
    return _line_span(text, rng) if span == "line" else _uniform_cuts(len(text), rng)


Parts = list[int] | tuple[list[int], list[int], list[int]]
"""A plain document's ids, or a FIM document's (prefix, middle, suffix) ids."""


def _cut_characters(
    texts: list[str], layouts: list[Layout | None], rngs: list[random.Random], encoder: FimEncoder, span: SpanStrategy
) -> list[Parts]:
    pieces: list[str] = []
    for text, layout, rng in zip(texts, layouts, rngs, strict=True):
        if layout is None:
            pieces.append(text)
        else:
            a, b = choose_span(text, rng, span)
            pieces += [text[:a], text[a:b], text[b:]]
    encoded = iter(encoder.encode(pieces))
    return [next(encoded) if layout is None else (next(encoded), next(encoded), next(encoded)) for layout in layouts]


def _cut_tokens(
    texts: list[str], layouts: list[Layout | None], rngs: list[random.Random], encoder: FimEncoder, span: SpanStrategy
) -> list[Parts]:
    located = [span == "line" and layout is not None for layout in layouts]  # offsets cost: ask only for these
    plain_ids = iter(encoder.encode([text for k, text in enumerate(texts) if not located[k]]))
    with_offsets = iter(encoder.encode_with_offsets([text for k, text in enumerate(texts) if located[k]]))
    parts: list[Parts] = []
    for text, layout, rng, offsets in zip(texts, layouts, rngs, located, strict=True):
        ids, starts = next(with_offsets) if offsets else (next(plain_ids), [])
        if layout is None:
            parts.append(ids)
            continue
        if offsets:  # the line span in characters, moved to the token boundaries at or after it
            a, b = _line_span(text, rng)
            i, j = bisect_left(starts, a), bisect_left(starts, b)
        else:
            i, j = _uniform_cuts(len(ids), rng)
        parts.append((ids[:i], ids[i:j], ids[j:]))
    return parts


@dataclass(slots=True)
class _Piece:
    document: int
    number: int
    start: int
    end: int
    layout: Layout | None
    rng: random.Random


def _pieces(
    documents: Sequence[Document], room: list[int], encoder: FimEncoder, config: FimConfig, seed: int, epoch: int
) -> list[_Piece]:
    """Every document's pieces (one per document unless `room`, its tokens per row, is smaller than the document)
    with their layouts; runs of plain pieces are merged."""
    long = [k for k, d in enumerate(documents) if len(d.content) > room[k]]  # a token is at least one character
    starts = dict(
        zip(long, (s for _, s in encoder.encode_with_offsets([documents[k].content for k in long])), strict=True)
    )
    pieces: list[_Piece] = []
    for k, document in enumerate(documents):
        spans = window_pieces(document.content, starts[k], room[k]) if k in starts else [(0, len(document.content))]
        for number, (start, end) in enumerate(spans):
            rng = document_rng(seed, document.repo_id, document.file_path, epoch, number)
            layout = choose_layout(rng, config)
            last = pieces[-1] if pieces else None
            if layout is None and last and last.document == k and last.layout is None:
                last.end = end
            else:
                pieces.append(_Piece(k, number, start, end, layout, rng))
    return pieces


def apply_fim(
    documents: Sequence[Document],
    encoder: FimEncoder,
    config: FimConfig,
    seed: int,
    *,
    epoch: int = 0,
    repo_context: bool = False,
    row_tokens: int | None = None,
) -> list[EncodedDocument]:
    """Encodes a batch of documents, turning a `config.rate` share of them (or of their pieces) into FIM examples.

    `row_tokens`: the training row's length; with `config.scope == "window"` a longer document is cut into pieces
    that fit one. The batch is tokenized in one call (the tokenizer's threads do the work); the result for each
    document depends only on the document, the seed and the epoch.
    """
    contexts = [encoder.context(d.repo_id, d.file_path) if repo_context else ([], "") for d in documents]
    windowed = row_tokens is not None and config.scope == "window" and config.rate > 0
    room = [
        row_tokens - len(before) - len(inner) - ROW_ROOM if windowed else len(d.content)
        for (before, inner), d in zip(contexts, documents, strict=True)
    ]
    pieces = _pieces(documents, [max(r, 1) for r in room], encoder, config, seed, epoch)
    texts = [contexts[p.document][1] + documents[p.document].content[p.start : p.end] for p in pieces]
    layouts, rngs = [p.layout for p in pieces], [p.rng for p in pieces]
    cut = _cut_characters if config.level == "char" else _cut_tokens
    results = []
    for piece, part in zip(pieces, cut(texts, layouts, rngs, encoder, config.span), strict=True):
        document, before = documents[piece.document], contexts[piece.document][0]
        layout = piece.layout
        ids = part if layout is None else encoder.fim_ids(layout, prefix=part[0], middle=part[1], suffix=part[2])
        ends = layout is not None or piece.end == len(document.content)
        results.append(EncodedDocument(document.repo_id, document.file_path, layout, before + ids, piece.number, ends))
    return results
