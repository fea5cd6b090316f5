"""What the Trainer iterates: FIM rows from collected code, or tokenized conversations, mixed by weight.

Each `--data` entry is a collected dataset directory, a Parquet/JSONL file or a hub dataset id, optionally with a
weight (`PATH:0.7`). FIM sources are split by file within each repository or by repository
(`personal_copilot.dataset.split_documents`); conversations by a hash of their position. Training rows come from an
endless, seeded interleave of the sources, so a run of `max_steps` steps sees the same rows in the same order every
time, and a resumed run can skip to where it was.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personal_copilot.dataset import (
    DatasetSplit,
    ExampleStream,
    FimEncoder,
    list_shards,
    read_document_sizes,
    split_documents,
)
from personal_copilot.errors import PcopilotError
from personal_copilot.train.chat import tokenize_conversation
from personal_copilot.train.config import TrainConfig

RowFactory = Callable[[int, int, int], Iterator[dict]]
"""(epoch, partition, number of partitions) -> that partition of a source's training rows for that epoch."""

_SHUFFLE_DOCUMENTS = 1024


@dataclass(frozen=True)
class DataSource:
    location: str
    weight: float


def parse_data_sources(specs: list[str]) -> list[DataSource]:
    """`PATH` or `PATH:WEIGHT` (weights need not sum to 1)."""
    sources = []
    for spec in specs:
        location, _, weight = spec.rpartition(":")
        try:
            value = float(weight)
        except ValueError:
            location, value = spec, 1.0
        if not location or value <= 0:
            raise PcopilotError(f"bad --data entry {spec!r}: use PATH or PATH:WEIGHT with a positive weight")
        sources.append(DataSource(location, value))
    return sources


@dataclass
class TrainingData:
    """Datasets for the Trainer and what the report and config say about them."""

    train: Any
    eval: list[dict[str, list[int]]] | None
    task: str
    splits: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


class InterleavedRows:
    """An endless iterable of training rows drawn from several row factories with probabilities ∝ weights.

    `factories[i](epoch, k, n)` returns partition k of n of source i's rows for that epoch (a DataLoader worker reads
    one partition, so workers never yield the same row); an exhausted source starts its next epoch.
    """

    def __init__(self, factories: list[RowFactory], weights: list[float], seed: int) -> None:
        self.factories, self.weights, self.seed = factories, weights, seed

    def rows(self, partition: int = 0, num_partitions: int = 1) -> Iterator[dict[str, list[int]]]:
        rng = random.Random(f"interleave/{self.seed}/{partition}")
        epochs = [0] * len(self.factories)
        iterators = [factory(0, partition, num_partitions) for factory in self.factories]
        while True:
            index = rng.choices(range(len(iterators)), weights=self.weights)[0] if len(iterators) > 1 else 0
            row = next(iterators[index], None)
            if row is None:
                epochs[index] += 1
                iterators[index] = self.factories[index](epochs[index], partition, num_partitions)
                row = next(iterators[index], None)
                if row is None:
                    raise PcopilotError("a --data source has no training rows (for each DataLoader worker)")
            yield row

    def __iter__(self) -> Iterator[dict[str, list[int]]]:
        return self.rows()


def as_torch_iterable(rows: InterleavedRows) -> Any:
    """The interleave as a torch IterableDataset whose DataLoader workers each read their own partition (torch is
    imported here, not at module import)."""
    from torch.utils.data import IterableDataset, get_worker_info

    class _Rows(IterableDataset):
        def __iter__(self) -> Iterator[dict[str, list[int]]]:
            worker = get_worker_info()
            return rows.rows(worker.id, worker.num_workers) if worker else rows.rows()

    return _Rows()


def _normalised_shards(location: str, out: Path, index: int, column: str) -> list[Path]:
    """Shards with (repo_id, file_path, content) for a source that is not a collect output: loaded with `datasets`
    (JSONL, Parquet or a hub id) and written once under the run directory."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = out / ".pcopilot" / "data" / f"source-{index}.parquet"
    if target.is_file():
        return [target]
    path = Path(location)
    try:
        if path.suffix in (".jsonl", ".json"):
            table = datasets.load_dataset("json", data_files=str(path), split="train")
        elif path.suffix == ".parquet" or path.is_dir():
            table = datasets.load_dataset("parquet", data_files=str(path if path.is_file() else path / "*.parquet"))
            table = table["train"]
        else:
            table = datasets.load_dataset(location, split="train")
    except Exception as error:  # datasets raises many types for a missing file, a bad format or no network
        raise PcopilotError(f"cannot load --data {location!r}: {error}") from error
    if column not in table.column_names:
        raise PcopilotError(f"--data {location!r} has no {column!r} column (columns: {', '.join(table.column_names)})")
    content = table[column]
    repo_ids = table["repo_id"] if "repo_id" in table.column_names else [Path(location).stem] * len(content)
    paths = table["file_path"] if "file_path" in table.column_names else [f"{i:08d}" for i in range(len(content))]
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"repo_id": repo_ids, "file_path": paths, "content": content}), target)
    return [target]


def fim_shards(location: str, out: Path, index: int) -> list[Path]:
    """The Parquet shards of a FIM data source."""
    path = Path(location)
    if path.is_dir() and ((path / "data").is_dir() or (path / "manifest.json").is_file()):
        return list_shards(path)
    return _normalised_shards(location, out, index, "content")


def build_fim_data(config: TrainConfig, tokenizer: Any, encoder: FimEncoder, out: Path) -> TrainingData:
    """Streams of FIM rows per source (train side) and the first `eval_rows` held-out rows."""
    factories, weights, evaluation, splits = [], [], [], []
    sources = parse_data_sources(config.data)
    for index, source in enumerate(sources):
        shards = fim_shards(source.location, out, index)
        split = split_documents(read_document_sizes(shards), config.eval_fraction, config.seed, config.split_by)
        splits.append({"data": source.location, "weight": source.weight, **split.to_record()})
        if split.train_documents == 0:
            raise PcopilotError(f"--data {source.location!r} has no training documents")

        def stream(side: str, shards: list[Path] = shards, split: DatasetSplit = split) -> ExampleStream:
            return ExampleStream(
                shards,
                encoder,
                config.fim,
                seq_len=config.seq_len,
                seed=config.seed,
                split=split,
                side=side,
                repo_context=config.repo_context,
                shuffle_buffer=_SHUFFLE_DOCUMENTS if side == "train" else 0,
            )

        def rows(epoch: int, k: int, n: int, stream: Callable[[str], ExampleStream] = stream) -> Iterator[dict]:
            train = stream("train")
            train.set_epoch(epoch)
            return (_as_features(row) for row in train.rows(k, n))

        factories.append(rows)
        weights.append(source.weight)
        if split.eval_documents:
            per_source = max(1, config.eval_rows // len(sources))
            evaluation += [_as_features(row) for _, row in zip(range(per_source), stream("eval"), strict=False)]
    train = InterleavedRows(factories, weights, config.seed)
    return TrainingData(as_torch_iterable(train), evaluation or None, "fim", splits)


def _as_features(row: Any) -> dict[str, list[int]]:
    return {"input_ids": row.input_ids, "labels": row.labels, "position_ids": row.position_ids}


def _is_held_out(index: int, eval_fraction: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}\x00{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def _load_conversations(location: str) -> list[Any]:
    import datasets

    path = Path(location)
    try:
        if path.suffix in (".jsonl", ".json"):
            table = datasets.load_dataset("json", data_files=str(path), split="train")
        elif path.suffix == ".parquet":
            table = datasets.load_dataset("parquet", data_files=str(path), split="train")
        else:
            table = datasets.load_dataset(location, split="train")
    except Exception as error:  # see _normalised_shards
        raise PcopilotError(f"cannot load --data {location!r}: {error}") from error
    if "messages" not in table.column_names:
        raise PcopilotError(f"--data {location!r} has no 'messages' column (columns: {', '.join(table.column_names)})")
    return table["messages"]


def build_chat_data(config: TrainConfig, tokenizer: Any) -> TrainingData:
    """Tokenized conversations per source, loss on assistant tokens only; malformed ones are skipped and counted."""
    factories, weights, evaluation, splits = [], [], [], []
    skipped = 0
    for source in parse_data_sources(config.data):
        train_rows, eval_rows = [], []
        for index, messages in enumerate(_load_conversations(source.location)):
            try:
                row = tokenize_conversation(messages, tokenizer, config.seq_len)
            except ValueError:
                skipped += 1
                continue
            (eval_rows if _is_held_out(index, config.eval_fraction, config.seed) else train_rows).append(row)
        if not train_rows:
            raise PcopilotError(f"--data {source.location!r} has no usable training conversation")
        splits.append(
            {"data": source.location, "weight": source.weight, "train": len(train_rows), "eval": len(eval_rows)}
        )
        evaluation += eval_rows[: max(1, config.eval_rows // len(config.data))]

        def rows(epoch: int, k: int, n: int, train_rows: list[dict] = train_rows) -> Iterator[dict]:
            order = list(range(len(train_rows)))
            random.Random(f"{config.seed}/{epoch}").shuffle(order)
            return (train_rows[i] for i in order[k::n])

        factories.append(rows)
        weights.append(source.weight)
    train = InterleavedRows(factories, weights, config.seed)
    skipped_counts = {"malformed_conversation": skipped} if skipped else {}
    return TrainingData(as_torch_iterable(train), evaluation or None, "chat", splits, skipped_counts)
