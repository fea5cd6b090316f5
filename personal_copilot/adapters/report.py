"""What each `pcopilot adapters` command reports (printed as tables, written as report.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personal_copilot.adapters.inspect import AdapterInfo
from personal_copilot.configs import to_plain
from personal_copilot.console import print_summary, print_table, stdout


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        stdout.print(f"warning: {warning}", style="yellow", markup=False)


@dataclass
class CombinedInput:
    name: str
    path: str
    weight: float
    rank: int
    alpha: float


@dataclass
class CombineReport:
    output: str
    base_model: str
    method: str
    """The combination PEFT applied (one adapter is always combined with `linear`)."""
    inputs: list[CombinedInput]
    rank: int
    """Rank of the combined adapter (its alpha equals it: scaling 1)."""
    parameters: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    exit_code: int = 0

    def print(self) -> None:
        print_table(
            "Combined adapters",
            ["name", "weight", "rank", "alpha", "path"],
            [(i.name, i.weight, i.rank, i.alpha, i.path) for i in self.inputs],
        )
        print_summary(
            "pcopilot adapters combine",
            [
                ("adapter", self.output),
                ("base model", self.base_model),
                ("method", self.method),
                ("rank (= alpha)", self.rank),
                ("parameters", self.parameters),
                ("seconds", self.seconds),
            ],
        )
        _print_warnings(self.warnings)


@dataclass
class ScaleReport:
    output: str
    adapter: str
    base_model: str | None
    weight: float
    tensors_scaled: int
    """B factors (and B biases) multiplied by the weight."""
    seconds: float
    warnings: list[str] = field(default_factory=list)
    exit_code: int = 0

    def print(self) -> None:
        print_summary(
            "pcopilot adapters scale",
            [
                ("adapter", self.output),
                ("from", self.adapter),
                ("base model", self.base_model or "-"),
                ("weight", self.weight),
                ("tensors scaled", self.tensors_scaled),
                ("seconds", self.seconds),
            ],
        )
        _print_warnings(self.warnings)


@dataclass
class TransferReport:
    output: str
    adapter: str
    from_base: str | None
    to_base: str
    modules_checked: int
    """Adapted modules whose names and sizes were checked against the new base."""
    seconds: float
    warnings: list[str] = field(default_factory=list)
    exit_code: int = 0

    def print(self) -> None:
        print_summary(
            "pcopilot adapters transfer",
            [
                ("adapter", self.output),
                ("from", self.adapter),
                ("trained on", self.from_base or "-"),
                ("now on", self.to_base),
                ("modules checked", self.modules_checked),
                ("seconds", self.seconds),
            ],
        )
        _print_warnings(self.warnings)


@dataclass
class MergeReport:
    output: str
    adapter: str
    base_model: str
    dtype: str
    parameters: int
    trained_on_4bit_base: bool
    base_weights: str
    """`original`, or `dequantized` (4-bit NF4 and back, as a QLoRA adapter saw them)."""
    adapter_effect: float | None
    """Largest logit change the adapter makes on the probe input (None without --verify)."""
    merge_error: float | None
    """Largest logit difference between the merged model and base-plus-adapter on the probe input."""
    verified: bool | None
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when the check found the merged model differing from base-plus-adapter."""
        return 1 if self.verified is False else 0

    def print(self) -> None:
        rows: list[tuple[str, object]] = [
            ("model", self.output),
            ("adapter", self.adapter),
            ("base model", self.base_model),
            ("dtype", self.dtype),
            ("base weights", self.base_weights),
            ("parameters", self.parameters),
        ]
        if self.verified is not None:
            rows += [
                ("max logit change by the adapter", f"{self.adapter_effect:.3g}"),
                ("max logit error of the merge", f"{self.merge_error:.3g}"),
                ("merge verified", "yes" if self.verified else "NO"),
            ]
        rows.append(("seconds", self.seconds))
        print_summary("pcopilot adapters merge", rows)
        _print_warnings(self.warnings)


_INSPECT_ROWS = (
    ("base model", "base_model"),
    ("made by", "made_by"),
    ("rank", "rank"),
    ("alpha", "alpha"),
    ("scaling", "scaling"),
    ("variants", "variants"),
    ("target modules", "target_modules"),
    ("adapted modules", "adapted_modules"),
    ("whole base weights", "base_weight_copies"),
    ("parameters", "parameters"),
    ("dtypes", "dtypes"),
    ("MB", "megabytes"),
    ("FIM family", "family"),
    ("trained on a 4-bit base", "trained_on_4bit_base"),
    ("tokenizer", "has_tokenizer"),
)


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else value


def _recipe_text(recipe: dict[str, Any] | None) -> str:
    """`cat of copilot×1.0 + assistant×0.5`, `×0.8 of runs/copilot`, `from bigcode/starcoder`."""
    if not recipe:
        return "-"
    if "inputs" in recipe:
        parts = " + ".join(f"{i['name']}×{i['weight']:g}" for i in recipe["inputs"])
        return f"{recipe['method']} of {parts}"
    if "weight" in recipe:
        return f"×{recipe['weight']:g} of {recipe['input']['path']}"
    return f"from {recipe.get('from_base')}"


@dataclass
class InspectReport:
    adapters: list[AdapterInfo]
    as_json: bool = False
    exit_code: int = 0

    def print(self) -> None:
        if self.as_json:
            print(json.dumps(to_plain(self.adapters), indent=2))
            return
        rows = [[label, *(_cell(getattr(a, key)) for a in self.adapters)] for label, key in _INSPECT_ROWS]
        rows.append(["recipe", *(_recipe_text(a.recipe) for a in self.adapters)])
        rows.insert(0, ["path", *(a.path for a in self.adapters)])
        print_table("pcopilot adapters inspect", ["", *(Path(a.path).name for a in self.adapters)], rows)
