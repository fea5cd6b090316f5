"""Rows a model trains on: documents packed into constant-length rows, or one document per row.

Every document is followed by the end-of-text token. In a row, `position_ids` restart at 0 where a document (or the
part of a long document carried into this row) starts, and `labels` are -100 there, so no token is trained to predict
the first token of an unrelated document. Rows carry no `attention_mask` on purpose: transformers (`masking_utils.
find_packed_sequence_indices`, and flash-attention's varlen path) derives a per-document causal mask from
`position_ids` when the mask is None and no KV cache is used (train with `use_cache=False`), so attention stays within
documents. Long documents are cut across rows and nothing is dropped: the stream's last partial row is padded to
`seq_len` with the pad token (labels -100; its position ids restart at 0, so the padding is a segment of its own and,
at the end of a causal row, is never attended to by a real token).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

IGNORE_INDEX = -100
"""Label of tokens that are not trained on (the loss of transformers' models skips it)."""

Source = TypeVar("Source")


@dataclass(slots=True)
class TrainingRow(Generic[Source]):
    """One training row and the sources of its tokens (one entry per document segment, in order)."""

    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    padding: int = 0
    """Pad tokens at the end of the row."""

    def add_segment(self, ids: Sequence[int], source: Source) -> None:
        """Appends a document (or a piece of one) that starts a new segment of the row."""
        self.input_ids += ids
        self.labels.append(IGNORE_INDEX)
        self.labels += ids[1:]
        self.position_ids += range(len(ids))
        self.sources.append(source)

    def pad_to(self, length: int, pad_id: int) -> None:
        """Pads the row to `length` tokens."""
        missing = length - len(self.input_ids)
        self.input_ids += [pad_id] * missing
        self.labels += [IGNORE_INDEX] * missing
        self.position_ids += range(missing)
        self.padding += missing


def pack_sequences(
    sequences: Iterable[tuple[Sequence[int], Source]], seq_len: int, eos_id: int, pad_id: int
) -> Iterator[TrainingRow[Source]]:
    """Concatenates (ids, source) pairs, each followed by `eos_id`, into rows of exactly `seq_len` tokens."""
    row: TrainingRow[Source] = TrainingRow()
    for ids, source in sequences:
        document = [*ids, eos_id]
        offset = 0
        while offset < len(document):
            take = min(seq_len - len(row.input_ids), len(document) - offset)
            row.add_segment(document[offset : offset + take], source)
            offset += take
            if len(row.input_ids) == seq_len:
                yield row
                row = TrainingRow()
    if row.input_ids:
        row.pad_to(seq_len, pad_id)
        yield row


def split_sequences(
    sequences: Iterable[tuple[Sequence[int], Source]], seq_len: int, eos_id: int
) -> Iterator[TrainingRow[Source]]:
    """One row per (ids, source) pair followed by `eos_id`, cut into rows of at most `seq_len` tokens (no padding)."""
    for ids, source in sequences:
        document = [*ids, eos_id]
        for offset in range(0, len(document), seq_len):
            row: TrainingRow[Source] = TrainingRow()
            row.add_segment(document[offset : offset + seq_len], source)
            yield row
