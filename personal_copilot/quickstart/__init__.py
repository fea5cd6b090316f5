"""`pcopilot quickstart` and `pcopilot base`: the whole loop offline, on the embedded default base model."""

from personal_copilot.quickstart.base import RECIPES, BaseModel, BaseRecipe, build_base, default_cache_dir
from personal_copilot.quickstart.config import BaseConfig, QuickstartConfig
from personal_copilot.quickstart.run import QuickstartReport, project_source, run_base, run_quickstart

__all__ = [
    "RECIPES",
    "BaseConfig",
    "BaseModel",
    "BaseRecipe",
    "QuickstartConfig",
    "QuickstartReport",
    "build_base",
    "default_cache_dir",
    "project_source",
    "run_base",
    "run_quickstart",
]
