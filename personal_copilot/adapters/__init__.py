"""`pcopilot adapters`: combine, scale, re-target, merge and inspect LoRA adapters (the blog's "dance of LoRAs")."""

from personal_copilot.adapters.config import (
    CombineConfig,
    InspectConfig,
    MergeConfig,
    ScaleConfig,
    TransferConfig,
    WeightedAdapter,
    parse_weighted_adapter,
)
from personal_copilot.adapters.inputs import AdapterDir, read_adapter, resolve_base
from personal_copilot.adapters.inspect import AdapterInfo, describe
from personal_copilot.adapters.report import CombineReport, InspectReport, MergeReport, ScaleReport, TransferReport
from personal_copilot.adapters.run import run_combine, run_inspect, run_merge, run_scale, run_transfer

__all__ = [
    "AdapterDir",
    "AdapterInfo",
    "CombineConfig",
    "CombineReport",
    "InspectConfig",
    "InspectReport",
    "MergeConfig",
    "MergeReport",
    "ScaleConfig",
    "ScaleReport",
    "TransferConfig",
    "TransferReport",
    "WeightedAdapter",
    "describe",
    "parse_weighted_adapter",
    "read_adapter",
    "resolve_base",
    "run_combine",
    "run_inspect",
    "run_merge",
    "run_scale",
    "run_transfer",
]
