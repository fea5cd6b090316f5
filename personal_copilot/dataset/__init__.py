"""Stage 2, `pcopilot dataset` / `pcopilot tokenizer`: a collected dataset -> what a code model trains on.

The model-family registry (FIM sentinels, stop tokens, repository context), FIM transforms (PSM/SPM, char or token
level, uniform or line spans), packing with per-document position ids, the train / eval split (files within each
repository, or whole repositories), a streaming example builder a Trainer can iterate, and a byte-level BPE tokenizer
trainer. Importing it imports no torch.
"""

from personal_copilot.dataset.config import DatasetConfig, FimConfig, TokenizerConfig
from personal_copilot.dataset.encoder import FimEncoder
from personal_copilot.dataset.families import (
    FAMILIES,
    FamilyName,
    FimSentinels,
    Layout,
    ModelFamily,
    detect_family,
    get_family,
    stop_token_ids,
)
from personal_copilot.dataset.fim import (
    EncodedDocument,
    apply_fim,
    choose_layout,
    choose_span,
    document_rng,
    window_pieces,
)
from personal_copilot.dataset.healing import HealingProcessor, TokenHealer, strip_healed
from personal_copilot.dataset.packing import IGNORE_INDEX, PackItem, TrainingRow, pack_sequences, split_sequences
from personal_copilot.dataset.reader import (
    Document,
    iter_documents,
    list_shards,
    read_document_keys,
    read_document_sizes,
)
from personal_copilot.dataset.report import DatasetReport, TokenizerReport
from personal_copilot.dataset.run import load_tokenizer, run_dataset, run_tokenizer
from personal_copilot.dataset.splits import (
    MIN_REPOSITORIES_FOR_REPOSITORY_SPLIT,
    DatasetSplit,
    RepositoryShare,
    SplitBy,
    split_documents,
)
from personal_copilot.dataset.stream import ExampleStream
from personal_copilot.dataset.tokenizer import train_tokenizer

__all__ = [
    "FAMILIES",
    "IGNORE_INDEX",
    "MIN_REPOSITORIES_FOR_REPOSITORY_SPLIT",
    "DatasetConfig",
    "DatasetReport",
    "DatasetSplit",
    "Document",
    "EncodedDocument",
    "ExampleStream",
    "FamilyName",
    "FimConfig",
    "FimEncoder",
    "FimSentinels",
    "HealingProcessor",
    "Layout",
    "ModelFamily",
    "PackItem",
    "RepositoryShare",
    "SplitBy",
    "TokenHealer",
    "TokenizerConfig",
    "TokenizerReport",
    "TrainingRow",
    "apply_fim",
    "choose_layout",
    "choose_span",
    "detect_family",
    "document_rng",
    "get_family",
    "iter_documents",
    "list_shards",
    "load_tokenizer",
    "pack_sequences",
    "read_document_keys",
    "read_document_sizes",
    "run_dataset",
    "run_tokenizer",
    "split_documents",
    "split_sequences",
    "stop_token_ids",
    "strip_healed",
    "train_tokenizer",
    "window_pieces",
]
