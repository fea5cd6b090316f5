"""The held-out side of a collected dataset: the split a training run held out (read from the `data_splits` of its
run record), or one computed by `split_by_repository`, the function the trainer splits with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personal_copilot.configs import EvalRows, RunRecord
from personal_copilot.dataset import DatasetSplit, Document, iter_documents, list_shards, read_document_keys
from personal_copilot.dataset import split_by_repository as compute_split
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


def _recorded_split(entry: dict[str, Any], rows: EvalRows | None, eval_fraction: float, seed: int) -> DatasetSplit:
    return DatasetSplit(
        by=entry["split_by"],
        eval_fraction=rows.eval_fraction if rows else eval_fraction,
        seed=rows.seed if rows else seed,
        eval_repos=tuple(entry.get("eval_repos", ())),
        eval_files=tuple(entry.get("eval_files", ())),
        train_documents=entry.get("train_documents", 0),
        eval_documents=entry.get("eval_documents", 0),
    )


def resolve_held_out(data: str | None, record: RunRecord | None, eval_fraction: float, seed: int) -> HeldOut:
    """The held-out documents of `data` (default: the training run's dataset): the run's split when it trained on
    that dataset, else `split_by_repository(eval_fraction, seed)`.

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
    keys = read_document_keys(shards)
    entry = next((e for e in entries if _same_path(e["data"], data)), None)
    if entry is not None:
        split = _recorded_split(entry, record.eval_rows, eval_fraction, seed)
        held = sum(split.side(repo, path) == "eval" for repo, path in keys)
        source = f"held out by the training run (by {split.by})"
        if held != split.eval_documents:
            source += f"; the dataset changed since: {split.eval_documents} held-out documents then, {held} now"
    else:
        split = compute_split(keys, eval_fraction, seed)
        held = split.eval_documents
        source = f"split by {split.by} here (eval_fraction {eval_fraction}, seed {seed})"
        if record is not None:
            source += "; the training run did not train on this dataset"
    if held == 0:
        raise PcopilotError(
            f"nothing of {data} is held out ({source}); the benchmarks need held-out files: collect more than one "
            "repository (or file), or raise --eval_fraction"
        )
    return HeldOut(Path(data), shards, split, source)
