"""Streaming reads of a collected dataset's Parquet shards (`DIR/data/*.parquet`), a batch of rows at a time, so a
corpus larger than memory can be read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from personal_copilot.errors import PcopilotError

_BATCH_ROWS = 256


@dataclass(frozen=True, slots=True)
class Document:
    """One file of the collected dataset."""

    repo_id: str
    file_path: str
    content: str


def list_shards(data: Path) -> list[Path]:
    """The Parquet shards of a collected dataset, in name order; `data` is the collect output or its `data/` folder.

    Raises:
        PcopilotError: no shard found.
    """
    data = Path(data)
    folder = data / "data" if (data / "data").is_dir() else data
    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise PcopilotError(f"no Parquet shards in {folder}: is {data} the output directory of `pcopilot collect`?")
    return shards


def iter_documents(shards: Sequence[Path], batch_rows: int = _BATCH_ROWS) -> Iterator[list[Document]]:
    """The documents of `shards`, in order, in lists of at most `batch_rows`."""
    import pyarrow.parquet as pq

    columns = ["repo_id", "file_path", "content"]
    for shard in shards:
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=batch_rows, columns=columns):
            rows = batch.to_pydict()
            yield [Document(*row) for row in zip(*(rows[name] for name in columns), strict=True)]


def read_document_keys(shards: Sequence[Path]) -> list[tuple[str, str]]:
    """The (repo_id, file_path) of every document, reading only those two columns."""
    import pyarrow.parquet as pq

    keys: list[tuple[str, str]] = []
    for shard in shards:
        table = pq.read_table(shard, columns=["repo_id", "file_path"])
        keys += zip(table.column("repo_id").to_pylist(), table.column("file_path").to_pylist(), strict=True)
    return keys


def read_document_sizes(shards: Sequence[Path]) -> list[tuple[str, str, int]]:
    """The (repo_id, file_path, bytes of UTF-8 content) of every document: the `num_bytes` column of a collected
    dataset, or the content's length in shards that have no such column."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    documents: list[tuple[str, str, int]] = []
    for shard in shards:
        names = pq.read_schema(shard).names
        size_column = "num_bytes" if "num_bytes" in names else "content"
        table = pq.read_table(shard, columns=["repo_id", "file_path", size_column])
        sizes = table.column(size_column) if size_column == "num_bytes" else pc.binary_length(table.column("content"))
        columns = (table.column("repo_id").to_pylist(), table.column("file_path").to_pylist(), sizes.to_pylist())
        documents += zip(*columns, strict=True)
    return documents
