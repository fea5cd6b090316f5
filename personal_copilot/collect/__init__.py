"""Stage 1, `pcopilot collect`: repositories -> a clean, deduplicated, secret-free Parquet code dataset."""

from personal_copilot.collect.config import CollectConfig, DedupConfig, FilterConfig
from personal_copilot.collect.languages import language_of
from personal_copilot.collect.report import CollectReport, SourceReport
from personal_copilot.collect.run import run_collect

__all__ = [
    "CollectConfig",
    "CollectReport",
    "DedupConfig",
    "FilterConfig",
    "SourceReport",
    "language_of",
    "run_collect",
]
