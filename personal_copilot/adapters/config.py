"""Settings of `pcopilot adapters combine | scale | transfer | merge | inspect`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from personal_copilot.modeling import Precision

CombinationMethod = Literal[
    "cat",
    "linear",
    "svd",
    "ties",
    "ties_svd",
    "dare_linear",
    "dare_ties",
    "dare_linear_svd",
    "dare_ties_svd",
    "magnitude_prune",
    "magnitude_prune_svd",
]
EQUAL_RANK_METHODS = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")
"""Methods that combine the A and B factors separately, so every adapter must have the same rank."""
DENSITY_METHODS = tuple(m for m in get_args(CombinationMethod) if m.startswith(("ties", "dare", "magnitude")))
"""Methods that sparsify to --density."""


@dataclass(frozen=True)
class WeightedAdapter:
    """One `NAME=PATH[:WEIGHT]` of `--adapters`."""

    name: str
    path: str
    weight: float


def parse_weighted_adapter(spec: str) -> WeightedAdapter:
    """`copilot=runs/copilot:0.8` -> (copilot, runs/copilot, 0.8); NAME defaults to the folder's name, WEIGHT to 1."""
    name, sep, rest = spec.partition("=")
    if not sep:
        name, rest = "", spec
    path, colon, weight_text = rest.rpartition(":")
    weight = 1.0
    if colon:
        try:
            weight = float(weight_text)
        except ValueError:
            path = rest  # a colon inside the path, no weight
    else:
        path = rest
    name = name.strip() or Path(path.rstrip("/")).name
    if not path or not name:
        raise ValueError(f"--adapters entry {spec!r} is not NAME=PATH[:WEIGHT] (e.g. copilot=runs/copilot:1.0)")
    if not math.isfinite(weight) or weight == 0:
        raise ValueError(f"--adapters entry {spec!r}: the weight must be a non-zero number, got {weight_text!r}")
    return WeightedAdapter(name=name, path=path, weight=weight)


@dataclass
class CombineConfig:
    """Combine several LoRA adapters into one with PEFT's `add_weighted_adapter`.

    Example: pcopilot adapters combine --adapters copilot=runs/copilot:1.0 assistant=runs/assistant:1.0 --method cat
    --output runs/code-buddy (the adapters may also come first, without --adapters)
    """

    output: Path
    """Folder the combined adapter is written to (a normal PEFT adapter folder)."""
    adapters: list[str] = field(default_factory=list)
    """Adapters as NAME=PATH[:WEIGHT] (PATH: an adapter folder or a `pcopilot train` run; WEIGHT defaults to 1)."""
    base: str | None = None
    """Base model: hub id, local folder or training run (default: the base the adapters were trained on)."""
    method: CombinationMethod = "cat"
    """How the adapters are combined: cat is exact (rank = sum of ranks), svd approximates the weighted sum of the
    updates at --svd_rank, linear mixes the A and B factors (equal ranks, cross terms), ties/dare_*/magnitude_prune
    sparsify with --density."""
    density: float | None = None
    """Fraction of values kept by ties, dare_* and magnitude_prune (required by them), in (0, 1]."""
    majority_sign_method: Literal["total", "frequency"] = "total"
    """How ties and dare_ties elect the sign of each value."""
    svd_rank: int | None = None
    """Rank of the result of the *_svd methods (default: the largest input rank)."""
    precision: Precision = "fp32"
    """Precision the base is loaded in while combining; the combined adapter is stored in it (bf16 halves the memory
    a large base needs, at about three significant digits per adapter value; auto: the base checkpoint's)."""
    allow_other_base: bool = False
    """Combine adapters trained on another base of the same shapes (e.g. starcoderplus -> starcoder)."""
    seed: int = 0
    """Seed of the random drop of the dare_* methods."""
    overwrite: bool = False
    """Replace what --output already holds."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if isinstance(self.adapters, str):
            self.adapters = [self.adapters]
        parsed = self.weighted_adapters()
        if not parsed:
            raise ValueError("--adapters needs at least one NAME=PATH[:WEIGHT] (e.g. --adapters copilot=runs/copilot)")
        names = [a.name for a in parsed]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"--adapters names must be unique, {', '.join(duplicates)} appears more than once")
        if self.method in DENSITY_METHODS and self.density is None:
            raise ValueError(f"--method {self.method} needs --density (the fraction of values kept, e.g. 0.5)")
        if self.density is not None and not 0.0 < self.density <= 1.0:
            raise ValueError(f"--density must be in (0, 1], got {self.density}")
        if self.svd_rank is not None and self.svd_rank < 1:
            raise ValueError(f"--svd_rank must be >= 1, got {self.svd_rank}")

    def weighted_adapters(self) -> list[WeightedAdapter]:
        return [parse_weighted_adapter(spec) for spec in self.adapters]


@dataclass
class ScaleConfig:
    """A new adapter whose update is the old one's times --weight (the blog scales to 0.8 to limit forgetting).

    Example: pcopilot adapters scale --adapter runs/copilot --weight 0.8 --output runs/copilot-0.8
    """

    adapter: str
    """Adapter folder or `pcopilot train` run."""
    weight: float
    """Factor on the adapter's update (negative subtracts it)."""
    output: Path
    """Folder the scaled adapter is written to."""
    overwrite: bool = False
    """Replace what --output already holds."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if not math.isfinite(self.weight) or self.weight == 0:
            raise ValueError(f"--weight must be a non-zero number, got {self.weight}")


@dataclass
class TransferConfig:
    """Re-target an adapter to another base of the same architecture (e.g. starcoder -> octocoder).

    Example: pcopilot adapters transfer --adapter runs/copilot --base bigcode/octocoder --output runs/copilot-octo
    """

    adapter: str
    """Adapter folder or `pcopilot train` run."""
    base: str
    """The new base model: hub id, local folder or training run."""
    output: Path
    """Folder the re-targeted adapter is written to."""
    overwrite: bool = False
    """Replace what --output already holds."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)


@dataclass
class MergeConfig:
    """Merge an adapter into its base: a standalone model (with tokenizer) that loads without PEFT.

    Example: pcopilot adapters merge --adapter runs/copilot --precision bf16 --output models/copilot-merged
    """

    adapter: str
    """Adapter folder or `pcopilot train` run."""
    output: Path
    """Folder the merged model is written to (Hugging Face format, loads with AutoModelForCausalLM)."""
    base: str | None = None
    """Base model: hub id, `base`, a model folder, a full or merged run (default: the base the adapter was trained
    on)."""
    precision: Precision = "auto"
    """Precision of the merged model (auto: the precision the base checkpoint declares, fp32 when it declares none)."""
    qlora_base: Literal["dequantized", "original"] = "dequantized"
    """For an adapter trained with QLoRA: merge into the base as training saw it (quantized to 4-bit NF4, then
    de-quantized; needs bitsandbytes) or into its original weights, which the adapter never saw."""
    verify: bool = True
    """Check on a short input that the merged model's logits equal the base-plus-adapter logits."""
    overwrite: bool = False
    """Replace what --output already holds."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)


@dataclass
class InspectConfig:
    """What an adapter is: base model, rank, alpha, target modules, parameters, and how it was made.

    Example: pcopilot adapters inspect runs/copilot runs/code-buddy
    """

    paths: list[str] = field(default_factory=list)
    """Adapter folders or `pcopilot train` runs (one column each)."""
    json: bool = False
    """Print JSON instead of a table."""

    def __post_init__(self) -> None:
        if isinstance(self.paths, str):
            self.paths = [self.paths]
        if not self.paths:
            raise ValueError("--paths needs at least one adapter folder (pcopilot adapters inspect PATH...)")
