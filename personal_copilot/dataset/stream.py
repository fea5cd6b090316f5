"""Training examples built on the fly from a collected dataset: read shards -> split -> FIM -> pack, streaming.

    stream = ExampleStream(list_shards(data), FimEncoder(tokenizer), FimConfig(), seq_len=2048, split=split)
    for row in stream.rows(partition, num_partitions): ...  # `pcopilot train` wraps this for its DataLoader

Memory stays bounded by one batch of documents (plus the shuffle buffer). Partition `k` of `n` (a DataLoader worker)
takes every n-th document, so workers share the corpus without overlap; a document's FIM example never depends on the
partition, the worker count or the shard order. Data-parallel ranks are not partitioned here: accelerate dispatches
or slices the batches of an iterable dataset across ranks, which needs every rank to see the same stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from personal_copilot.dataset.config import FimConfig
from personal_copilot.dataset.encoder import FimEncoder
from personal_copilot.dataset.families import Layout
from personal_copilot.dataset.fim import EncodedDocument, apply_fim
from personal_copilot.dataset.packing import PackItem, TrainingRow, pack_sequences, split_sequences
from personal_copilot.dataset.reader import Document, iter_documents
from personal_copilot.dataset.splits import DatasetSplit, Side

RowSource = tuple[str, str, Layout | None, int]
"""(repo_id, file_path, FIM layout or None, piece of the file) of a document segment in a row."""


class ExampleStream:
    """An iterable of `TrainingRow`s over Parquet shards.

    Args:
        shards: the collected dataset's Parquet files (`list_shards(DIR)`), read in this order.
        encoder: the tokenizer bound to its model family.
        fim: FIM settings; `fim.rate > 0` needs an encoder built with `require_fim=True`.
        seq_len: tokens per row.
        packing: pack documents into rows of exactly `seq_len`; False: one document per row (cut at `seq_len`).
        seed: seed of the FIM choices and of the shuffle.
        split: the train/eval split; None uses every document.
        side: which side of `split` to read.
        repo_context: put the repository name and file path before each document.
        shuffle_buffer: shuffle documents through a buffer of this many (0: dataset order, sorted by repo and path).
        batch_documents: documents tokenized per call.
    """

    def __init__(
        self,
        shards: Sequence[Path],
        encoder: FimEncoder,
        fim: FimConfig,
        *,
        seq_len: int,
        packing: bool = True,
        seed: int = 0,
        split: DatasetSplit | None = None,
        side: Side = "train",
        repo_context: bool = False,
        shuffle_buffer: int = 0,
        batch_documents: int = 256,
    ) -> None:
        self.shards = list(shards)
        self.encoder, self.fim = encoder, fim
        self.seq_len, self.packing, self.seed = seq_len, packing, seed
        self.split, self.side = split, side
        self.repo_context, self.shuffle_buffer, self.batch_documents = repo_context, shuffle_buffer, batch_documents
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Later epochs draw new FIM examples (and a new shuffle) from the same documents."""
        self.epoch = epoch

    def _raw_documents(self, partition: int, num_partitions: int) -> Iterator[Document]:
        index = 0
        for batch in iter_documents(self.shards):
            for document in batch:
                if self.split and self.split.side(document.repo_id, document.file_path) != self.side:
                    continue
                if index % num_partitions == partition:
                    yield document
                index += 1

    def _shuffled(self, documents: Iterator[Document], partition: int) -> Iterator[Document]:
        rng = random.Random(f"{self.seed}/{self.epoch}/{partition}")
        buffer: list[Document] = []
        for document in documents:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(document)
                continue
            k = rng.randrange(len(buffer))
            yield buffer[k]
            buffer[k] = document
        rng.shuffle(buffer)
        yield from buffer

    def documents(self, partition: int = 0, num_partitions: int = 1) -> Iterator[EncodedDocument]:
        """The encoded (FIM-transformed or plain) documents of one partition."""
        documents = self._raw_documents(partition, num_partitions)
        if self.shuffle_buffer:
            documents = self._shuffled(documents, partition)
        while batch := list(islice(documents, self.batch_documents)):
            yield from apply_fim(
                batch,
                self.encoder,
                self.fim,
                self.seed,
                epoch=self.epoch,
                repo_context=self.repo_context,
                row_tokens=self.seq_len,
            )

    def rows(self, partition: int = 0, num_partitions: int = 1) -> Iterator[TrainingRow[RowSource]]:
        """The training rows of one partition."""
        documents = self.documents(partition, num_partitions)
        sequences = (
            PackItem(
                d.input_ids, (d.repo_id, d.file_path, d.layout, d.piece), d.end_of_text, whole=d.layout is not None
            )
            for d in documents
        )
        if self.packing:
            return pack_sequences(sequences, self.seq_len, self.encoder.eos_id, self.encoder.pad_id)
        return split_sequences(sequences, self.seq_len, self.encoder.eos_id)

    def __iter__(self) -> Iterator[TrainingRow[RowSource]]:
        return self.rows()
