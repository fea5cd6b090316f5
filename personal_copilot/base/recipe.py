"""How the embedded base model is made: one frozen recipe per name, every field recorded in the model card.

`default` is the shipped base (hours on a 2-core CPU); `tiny` is the old 5-minute build; `test` is what CI builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RecipeName = Literal["default", "tiny", "test"]


@dataclass(frozen=True)
class BaseRecipe:
    """A pretraining recipe: corpus, model, optimisation. Changing any field makes another base."""

    model: str
    """A `scratch:` preset (see personal_copilot.modeling.SCRATCH_PRESETS)."""
    vocab_size: int
    seq_len: int
    batch_size: int
    max_steps: int
    learning_rate: float
    warmup_steps: int
    weight_decay: float = 0.1
    adam_beta2: float = 0.95
    """AdamW's second-moment decay: 0.95 (as GPT-3 and Llama pretraining) steadies small, noisy batches."""
    fim_rate: float = 0.5
    fim_span: Literal["uniform", "line"] = "line"
    """`line`: the editor-like middles (part of a line, rest of a line, whole lines, a block) a user asks for."""
    file_fim_until: int = 0
    """Legs ending at or before this step made FIM examples of whole files (`--fim.scope file`), later legs of
    row-sized pieces (`window`). The shipped base's first 4,800 steps used whole files, and its PSM middles landed
    outside the 512-token window: it learned only SPM until a third leg trained on pieces."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """auto: bf16 autocast (a GPU, or a CPU with AVX-512 BF16), else fp32."""
    packages: bool = True
    """Learn from the permissively licensed packages installed beside the standard library, not only the latter."""
    stdlib_modules: tuple[str, ...] | None = None
    """Standard-library modules to learn from (None: all but the excluded ones)."""
    heldout_stdlib_fraction: float = 0.1
    """Share of standard-library top-level modules held out as the general-code test set."""
    heldout_packages: int = 3
    """Whole packages held out as a second general-code test set."""
    seed: int = 0
    legs: tuple[int, ...] = ()
    """Steps at which pretraining stopped and resumed with the schedule stretched to the next leg (or `max_steps`):
    the shipped base was trained for 2,100 steps, then given more compute; a rebuild retraces the same legs."""


RECIPES: dict[str, BaseRecipe] = {
    "default": BaseRecipe(
        model="scratch:base",
        vocab_size=8192,
        seq_len=512,
        batch_size=16,
        max_steps=6800,
        learning_rate=1e-3,
        warmup_steps=100,
        legs=(2100, 4800),
        file_fim_until=4800,
    ),
    "tiny": BaseRecipe(
        model="scratch:tiny",
        vocab_size=4096,
        seq_len=256,
        batch_size=16,
        max_steps=1000,
        learning_rate=3e-3,
        warmup_steps=50,
        fim_span="uniform",
        precision="fp32",
        packages=False,
    ),
    "test": BaseRecipe(
        model="scratch:tiny",
        vocab_size=1024,
        seq_len=64,
        batch_size=4,
        max_steps=6,
        learning_rate=3e-3,
        warmup_steps=0,
        legs=(3,),
        file_fim_until=3,
        precision="fp32",
        packages=False,
        stdlib_modules=("json", "http", "logging", "urllib", "wsgiref", "concurrent"),
        heldout_stdlib_fraction=0.34,
        heldout_packages=0,
    ),
}
