"""The held-out side of a collected dataset: the split a training run held out (read from the `data_splits` of its
run record), or one computed by `split_documents`, the function the trainer splits with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personal_copilot.configs import EvalRows, RunRecord
from personal_copilot.dataset import (
    DatasetSplit,
    Document,
    SplitBy,
    iter_documents,
    list_shards,
    read_document_keys,
    read_document_sizes,
)
from personal_copilot.dataset import split_documents as compute_split
from personal_copilot.errors import PcopilotError


@dataclass(frozen=True)
class HeldOut:
    """The held-out documents of a dataset and how the split was decided."""

    data: Path
    shards: list[Path]
    split: DatasetSplit
    source: str
    """Where the split comes from, in words (for reports)."""

    def keys(self) -> list[tuple[str, str]]:
        """(repo_id, file_path) of every held-out document, in dataset order."""
        keys = read_document_keys(self.shards)
        return [(repo, path) for repo, path in keys if self.split.side(repo, path) == "eval"]

    def documents(self) -> Iterator[Document]:
        """The held-out documents, in dataset order (streamed, a batch of rows at a time)."""
        for batch in iter_documents(self.shards):
            for document in batch:
                if self.split.side(document.repo_id, document.file_path) == "eval":
                    yield document


def _same_path(a: str, b: str) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _recorded_split(entry: dict[str, Any], rows: EvalRows | None, keys: list[tuple[str, str]]) -> DatasetSplit:
    files = entry.get("eval_files", [])
    if files and isinstance(files[0], str):  # recorded before files were held out per repository: one repository
        entry = {**entry, "eval_files": [[keys[0][0], path] for path in files]}
    return DatasetSplit.from_record(entry, rows.eval_fraction if rows else 0.0, rows.seed if rows else 0)


def resolve_held_out(
    data: str | None, record: RunRecord | None, eval_fraction: float, seed: int, split_by: SplitBy = "auto"
) -> HeldOut:
    """The held-out documents of `data` (default: the training run's dataset): the run's split when it trained on
    that dataset and held some of it out, else `split_documents(eval_fraction, seed, split_by)` computed here (and
    said so: when the run trained on that data, the held-out files are files it trained on).

    Raises:
        PcopilotError: no dataset given or found, no shards, or nothing held out.
    """
    entries = [e for e in (record.data_splits if record else []) if "split_by" in e]
    if data is None:
        collected = [e for e in entries if Path(e["data"]).is_dir()]
        if not collected:
            raise PcopilotError(
                "--data is needed: the output directory of `pcopilot collect` with the code to evaluate on"
                + (" (the training run's data is not a collected dataset directory)" if record else "")
            )
        data = collected[0]["data"]
    shards = list_shards(Path(data))
    documents = read_document_sizes(shards)
    keys = [(repo, path) for repo, path, _ in documents]
    entry = next((e for e in entries if _same_path(e["data"], data)), None)
    if entry is not None and entry.get("eval_documents", 0) > 0:
        split = _recorded_split(entry, record.eval_rows, keys)
        recorded = split.eval_documents
        split = split.counted(documents)
        source = f"held out by the training run ({split.summary_rows()[0][1]})"
        if split.eval_documents != recorded:
            source += f"; the dataset changed since: {recorded} held-out documents then, {split.eval_documents} now"
    else:
        split = compute_split(documents, eval_fraction, seed, split_by)
        source = f"split here ({split.summary_rows()[0][1]}; eval_fraction {eval_fraction}, seed {seed})"
        if entry is not None:
            source = (
                f"not held out from training: the run trained on every file of {data}; {source} for this evaluation"
            )
        elif record is not None:
            source += "; the training run did not train on this dataset"
    if split.eval_documents == 0:
        raise PcopilotError(
            f"nothing of {data} is held out ({source}); the benchmarks need held-out files: collect more than one "
            "file, or raise --eval_fraction"
        )
    return HeldOut(Path(data), shards, split, source)
