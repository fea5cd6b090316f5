"""Stage 3, `pcopilot train`: LoRA, QLoRA or full fine-tuning with FIM (or chat) on transformers' Trainer."""

from personal_copilot.train.config import LoraSettings, OptimSettings, TrainConfig
from personal_copilot.train.estimate import run_estimate
from personal_copilot.train.estimate_config import EstimateConfig
from personal_copilot.train.lora import LORA_TARGETS_BY_MODEL_TYPE, lora_target_modules
from personal_copilot.train.report import TrainReport, read_train_report
from personal_copilot.train.resume import TrainInterrupted
from personal_copilot.train.run import BASE_DIR, run_train

__all__ = [
    "BASE_DIR",
    "LORA_TARGETS_BY_MODEL_TYPE",
    "EstimateConfig",
    "LoraSettings",
    "OptimSettings",
    "TrainConfig",
    "TrainInterrupted",
    "TrainReport",
    "lora_target_modules",
    "read_train_report",
    "run_estimate",
    "run_train",
]
