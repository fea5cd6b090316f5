"""Rows a model trains on: documents packed into constant-length rows, or one document per row.

Every document is followed by the end-of-text token (not a plain piece of a file that goes on). In a row,
`position_ids` restart at 0 where a document (or the part of a long document carried into this row) starts, and
`labels` are -100 there, so no token is trained to predict the first token of an unrelated document. Rows carry no
`attention_mask` on purpose: transformers (`masking_utils.find_packed_sequence_indices`, and flash-attention's varlen
path) derives a per-document causal mask from `position_ids` when the mask is None and no KV cache is used (train with
`use_cache=False`), so attention stays within documents. Long documents are cut across rows and nothing is dropped: the
stream's last partial row is padded to `seq_len` with the pad token (labels -100; its position ids restart at 0, so the
padding is a segment of its own and, at the end of a causal row, is never attended to by a real token). A `whole`
sequence (a FIM example that fits a row) is never cut: when it does not fit the rest of the row it waits for the next
row, while the sequences after it fill this one.
"""

from __future__ import annotations

from collections import deque
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


@dataclass(frozen=True, slots=True)
class PackItem(Generic[Source]):
    """A sequence to put in rows, and how."""

    ids: Sequence[int]
    source: Source
    end_of_text: bool = True
    """Follow it with end-of-text (False: a piece of a file that goes on in the next piece)."""
    whole: bool = False
    """Keep it in one row when it fits one (a FIM example: its middle must see its prefix and suffix)."""

    def tokens(self, eos_id: int) -> list[int]:
        return [*self.ids, eos_id] if self.end_of_text else list(self.ids)


class _Packer(Generic[Source]):
    def __init__(self, seq_len: int, pad_id: int, max_waiting: int) -> None:
        self.seq_len, self.pad_id, self.max_waiting = seq_len, pad_id, max_waiting
        self.row: TrainingRow[Source] = TrainingRow()
        self.waiting: deque[tuple[list[int], Source]] = deque()

    @property
    def free(self) -> int:
        return self.seq_len - len(self.row.input_ids)

    def add(self, tokens: list[int], source: Source, whole: bool) -> Iterator[TrainingRow[Source]]:
        if not tokens:
            return
        if whole and len(tokens) <= self.seq_len:
            if len(tokens) <= self.free:
                self.row.add_segment(tokens, source)
            else:
                self.waiting.append((tokens, source))
                if len(self.waiting) <= self.max_waiting:
                    return
                self.row.pad_to(self.seq_len, self.pad_id)  # nothing cuttable came to fill it
        else:
            offset = 0
            while offset < len(tokens):
                take = min(self.free, len(tokens) - offset)
                self.row.add_segment(tokens[offset : offset + take], source)
                offset += take
                if not self.free:
                    yield from self._next_rows()
        if not self.free:
            yield from self._next_rows()

    def _next_rows(self) -> Iterator[TrainingRow[Source]]:
        """Yields the full row and starts the next with the waiting sequences that fit, as long as rows fill up."""
        while True:
            yield self.row
            self.row = TrainingRow()
            for tokens, source in list(self.waiting):
                if len(tokens) <= self.free:
                    self.row.add_segment(tokens, source)
                    self.waiting.remove((tokens, source))
            if self.free:
                return

    def finish(self) -> Iterator[TrainingRow[Source]]:
        while self.waiting:
            self.row.pad_to(self.seq_len, self.pad_id)
            yield from self._next_rows()
        if self.row.input_ids:
            self.row.pad_to(self.seq_len, self.pad_id)
            yield self.row


def pack_sequences(
    sequences: Iterable[PackItem[Source]], seq_len: int, eos_id: int, pad_id: int, max_waiting: int = 8
) -> Iterator[TrainingRow[Source]]:
    """Concatenates sequences (each followed by `eos_id` unless told otherwise) into rows of exactly `seq_len`
    tokens; at most `max_waiting` whole sequences wait for a row before the current one is padded to make room."""
    packer: _Packer[Source] = _Packer(seq_len, pad_id, max_waiting)
    for item in sequences:
        yield from packer.add(item.tokens(eos_id), item.source, item.whole)
    yield from packer.finish()


def split_sequences(sequences: Iterable[PackItem[Source]], seq_len: int, eos_id: int) -> Iterator[TrainingRow[Source]]:
    """One row per sequence (followed by `eos_id` unless told otherwise), cut into rows of at most `seq_len` tokens
    (no padding)."""
    for item in sequences:
        tokens = item.tokens(eos_id)
        for offset in range(0, len(tokens), seq_len):
            row: TrainingRow[Source] = TrainingRow()
            row.add_segment(tokens[offset : offset + seq_len], item.source)
            yield row
