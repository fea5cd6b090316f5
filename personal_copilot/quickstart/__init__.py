"""`pcopilot quickstart`: the whole loop offline, on the shipped base model."""

from personal_copilot.quickstart.config import QuickstartConfig
from personal_copilot.quickstart.run import QuickstartReport, project_source, run_quickstart, tune_config

__all__ = ["QuickstartConfig", "QuickstartReport", "project_source", "run_quickstart", "tune_config"]
