"""The one module of this stage that imports torch: an `ExampleStream` as a torch `IterableDataset`.

Imported only by `ExampleStream.as_torch_dataset()`, so importing `personal_copilot.dataset` stays torch-free.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import IterableDataset, get_worker_info

from personal_copilot.dataset.stream import ExampleStream


class TorchExampleStream(IterableDataset):
    """Yields {input_ids, labels, position_ids} lists; each DataLoader worker reads its own share of the documents.

    With packing every row has `seq_len` tokens, so transformers' `default_data_collator` stacks them; without
    packing rows differ in length and need a padding collator.
    """

    def __init__(self, stream: ExampleStream) -> None:
        super().__init__()
        self.stream = stream

    def __iter__(self) -> Iterator[dict[str, list[int]]]:
        worker = get_worker_info()
        partition, num_partitions = (worker.id, worker.num_workers) if worker else (0, 1)
        for row in self.stream.rows(partition, num_partitions):
            yield {"input_ids": row.input_ids, "labels": row.labels, "position_ids": row.position_ids}

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer at each epoch: new FIM draws and shuffle for the same documents."""
        self.stream.set_epoch(epoch)
