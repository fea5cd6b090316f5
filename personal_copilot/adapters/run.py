"""`pcopilot adapters combine | scale | transfer | merge | inspect`: each reads and checks its inputs before loading a
model, writes its output folder (weights, tokenizer, pcopilot_config.yaml with the recipe, report.json) and reports.

    pcopilot adapters combine --adapters copilot=runs/copilot assistant=runs/assistant --output runs/code-buddy
    pcopilot adapters scale --adapter runs/copilot --weight 0.8 --output runs/copilot-0.8
    pcopilot adapters transfer --adapter runs/copilot --base bigcode/octocoder --output runs/copilot-octocoder
    pcopilot adapters merge --adapter runs/code-buddy --precision bf16 --output models/code-buddy
    pcopilot adapters inspect runs/copilot runs/code-buddy
"""

from __future__ import annotations

import time
from typing import Any

from personal_copilot.adapters.base_model import declared_precision, load_base, to_gpu_if_it_fits
from personal_copilot.adapters.checks import (
    check_fits,
    combined_tokenizer,
    refuse_base_copies_elsewhere,
    refuse_variants,
    require_equal_ranks,
)
from personal_copilot.adapters.combine import combine_into
from personal_copilot.adapters.config import (
    EQUAL_RANK_METHODS,
    CombineConfig,
    InspectConfig,
    MergeConfig,
    ScaleConfig,
    TransferConfig,
)
from personal_copilot.adapters.inputs import AdapterDir, read_adapter, resolve_base, same_base, tokenizer_length
from personal_copilot.adapters.inspect import describe
from personal_copilot.adapters.merge import merge_into
from personal_copilot.adapters.outputs import check_output, save_tokenizer, staged_output, write_outputs
from personal_copilot.adapters.report import (
    CombinedInput,
    CombineReport,
    InspectReport,
    MergeReport,
    ScaleReport,
    TransferReport,
)
from personal_copilot.adapters.scale import scale_into
from personal_copilot.adapters.transfer import check_transfer, write_transferred
from personal_copilot.errors import PcopilotError
from personal_copilot.modeling import load_tokenizer

_QLORA_WARNING = {
    "dequantized": "{adapter} was trained with QLoRA on a 4-bit base; it is merged into that base de-quantized to "
    "{dtype}, so the merged model computes in {dtype} what the QLoRA model computed with 4-bit weights and its "
    "outputs differ slightly: evaluate the merged model (pcopilot eval compare --model {output}) before serving it",
    "original": "{adapter} was trained with QLoRA on a 4-bit base; it is merged into the original {dtype} weights, "
    "which it never saw, so the merged model's outputs differ slightly from the QLoRA model's: evaluate the merged "
    "model (pcopilot eval compare --model {output}) before serving it",
}


def _provenance(adapters: list[AdapterDir]) -> dict[str, Any]:
    """What an output inherits from its inputs for later stages: FIM family, whether a 4-bit base was involved, and
    (from a single input) the data splits and eval rows of its training run, so that eval holds out the same files."""
    families = [a.family for a in adapters if a.family]
    inherited: dict[str, Any] = {
        "family": families[0] if families else None,
        "trained_on_4bit_base": any(a.trained_on_4bit_base for a in adapters),
    }
    if len(adapters) == 1 and adapters[0].run is not None:
        inherited |= {"data_splits": adapters[0].run.data_splits, "eval_rows": adapters[0].run.eval_rows}
    return inherited


def _combine_warnings(names: list[str], adapters: list[AdapterDir], base: str) -> list[str]:
    warnings = []
    targets = {name: sorted(a.lora["target_modules"]) for name, a in zip(names, adapters, strict=True)}
    if len({tuple(t) for t in targets.values()}) > 1:
        listing = "; ".join(f"{name}: {', '.join(t)}" for name, t in targets.items())
        warnings.append(
            f"the adapters target different modules ({listing}): the combination covers all of them, and a module "
            "only some adapters target gets only their updates"
        )
    families = {a.family for a in adapters if a.family}
    if len(families) > 1:
        warnings.append(f"the adapters were trained for different FIM families ({', '.join(sorted(families))})")
    warnings += [
        f"{name} was trained on {a.base_model}, combined here on {base}"
        for name, a in _elsewhere(names, adapters, base)
    ]
    return warnings


def _elsewhere(names: list[str], adapters: list[AdapterDir], base: str) -> list[tuple[str, AdapterDir]]:
    """The adapters that record a base other than `base`."""
    return [(n, a) for n, a in zip(names, adapters, strict=True) if a.base_model and not same_base(a.base_model, base)]


def run_combine(config: CombineConfig) -> CombineReport:
    """Combines `config.adapters` on their base with PEFT and writes the combined adapter to `config.output`."""
    start = time.perf_counter()
    weighted = config.weighted_adapters()
    names = [w.name for w in weighted]
    adapters = [read_adapter(w.path) for w in weighted]
    check_output(config.output, config.overwrite, [a.path for a in adapters])
    for adapter in adapters:
        refuse_variants(adapter, "combine", allowed=("trainable_token_indices",))
    tokenizer_from = combined_tokenizer(names, adapters)
    base = resolve_base(config.base, adapters)
    if config.method in EQUAL_RANK_METHODS and len(adapters) > 1:
        require_equal_ranks(adapters, names, config.method)
    elsewhere = _elsewhere(names, adapters, base)
    if elsewhere and not config.allow_other_base:
        listing = "; ".join(f"{name} on {adapter.base_model}" for name, adapter in elsewhere)
        raise PcopilotError(
            f"--base is {base}, but the adapters were trained on other bases ({listing}); pass --allow_other_base to "
            "combine them there anyway (module names and sizes are checked), or leave --base out"
        )
    for adapter in adapters:
        refuse_base_copies_elsewhere(adapter, base)
    precision = declared_precision(base) if config.precision == "auto" else config.precision
    model = load_base(base, precision, tokenizer_length(tokenizer_from) if tokenizer_from else None)
    for adapter in adapters:
        check_fits(adapter, model, base)
    method = config.method if len(adapters) > 1 else "linear"  # PEFT's choice for one adapter
    inputs = [{"name": w.name, "weight": w.weight, **a.describe()} for w, a in zip(weighted, adapters, strict=True)]
    extra = {"base_model": base, **_provenance(adapters), "recipe": {"method": method, "inputs": inputs}}
    with staged_output(config.output) as staging:
        combine_into(staging, model, adapters, [w.weight for w in weighted], config)
        if tokenizer_from:
            save_tokenizer(tokenizer_from.path, staging)
        combined = read_adapter(staging)
        report = CombineReport(
            output=str(config.output),
            base_model=base,
            method=method,
            inputs=[
                CombinedInput(w.name, str(a.path), w.weight, a.rank, float(a.lora["lora_alpha"]))
                for w, a in zip(weighted, adapters, strict=True)
            ],
            rank=combined.rank,
            parameters=combined.parameter_count(),
            seconds=round(time.perf_counter() - start, 2),
            warnings=_combine_warnings(names, adapters, base),
        )
        write_outputs(staging, "combine", config, report, extra)
    return report


def run_scale(config: ScaleConfig) -> ScaleReport:
    """Writes `config.adapter` with its update times `config.weight` to `config.output` (no base model needed)."""
    start = time.perf_counter()
    adapter = read_adapter(config.adapter)
    check_output(config.output, config.overwrite, [adapter.path])
    refuse_variants(adapter, "scale", allowed=("lora_bias", "trainable_token_indices"))
    warnings = []
    if adapter.trainable_token_indices:
        warnings.append(
            "the trained embeddings of the added tokens (trainable_token_indices) are kept as trained: they are rows "
            "of new tokens, not updates of the base"
        )
    with staged_output(config.output) as staging:
        scaled = scale_into(staging, adapter, config.weight)
        if adapter.has_tokenizer:
            save_tokenizer(adapter.path, staging)
        report = ScaleReport(
            output=str(config.output),
            adapter=str(adapter.path),
            base_model=adapter.base_model,
            weight=config.weight,
            tensors_scaled=scaled,
            seconds=round(time.perf_counter() - start, 2),
            warnings=warnings,
        )
        recipe = {"weight": config.weight, "input": adapter.describe()}
        extra = {"base_model": adapter.base_model, **_provenance([adapter]), "recipe": recipe}
        write_outputs(staging, "scale", config, report, extra)
    return report


def run_transfer(config: TransferConfig) -> TransferReport:
    """Checks that `config.adapter` fits `config.base` (names and sizes) and writes it re-targeted there."""
    start = time.perf_counter()
    adapter = read_adapter(config.adapter)
    check_output(config.output, config.overwrite, [adapter.path])
    base = resolve_base(config.base, [])
    modules = check_transfer(adapter, base)
    warnings = [f"{adapter.path} already records {base} as its base"] if same_base(adapter.base_model, base) else []
    with staged_output(config.output) as staging:
        write_transferred(staging, adapter, base)
        if adapter.has_tokenizer:
            save_tokenizer(adapter.path, staging)
        report = TransferReport(
            output=str(config.output),
            adapter=str(adapter.path),
            from_base=adapter.base_model,
            to_base=base,
            modules_checked=modules,
            seconds=round(time.perf_counter() - start, 2),
            warnings=warnings,
        )
        recipe = {"from_base": adapter.base_model, "input": adapter.describe()}
        write_outputs(
            staging, "transfer", config, report, {"base_model": base, **_provenance([adapter]), "recipe": recipe}
        )
    return report


def run_merge(config: MergeConfig) -> MergeReport:
    """Merges `config.adapter` into its base and writes a standalone model with its tokenizer to `config.output`."""
    start = time.perf_counter()
    adapter = read_adapter(config.adapter)
    check_output(config.output, config.overwrite, [adapter.path])
    base = resolve_base(config.base, [adapter])
    refuse_base_copies_elsewhere(adapter, base)
    precision = declared_precision(base) if config.precision == "auto" else config.precision
    tokenizer = load_tokenizer(str(adapter.path) if adapter.has_tokenizer else base)
    dequantized = adapter.trained_on_4bit_base and config.qlora_base == "dequantized"
    model = load_base(base, precision, tokenizer_length(adapter), dequantized=dequantized)
    to_gpu_if_it_fits(model)
    check_fits(adapter, model, base)
    warnings = []
    if adapter.base_model and not same_base(adapter.base_model, base):
        warnings.append(f"{adapter.path} was trained on {adapter.base_model}, merged here into {base}")
    if adapter.trained_on_4bit_base:
        warnings.append(
            _QLORA_WARNING[config.qlora_base].format(adapter=adapter.path, dtype=precision, output=config.output)
        )
    with staged_output(config.output) as staging:
        check = merge_into(staging, model, adapter, tokenizer, config.verify)
        if check and check.adapter_effect == 0:
            warnings.append("the adapter changes nothing on the probe input (are its B factors still zero?)")
        report = MergeReport(
            output=str(config.output),
            adapter=str(adapter.path),
            base_model=base,
            dtype=precision,
            parameters=sum(p.numel() for p in model.parameters()),
            trained_on_4bit_base=adapter.trained_on_4bit_base,
            base_weights="dequantized" if dequantized else "original",
            adapter_effect=check.adapter_effect if check else None,
            merge_error=check.merge_error if check else None,
            verified=check.passed if check else None,
            seconds=round(time.perf_counter() - start, 2),
            warnings=warnings,
        )
        extra = {"base_model": base, **_provenance([adapter]), "recipe": {"merged": adapter.describe()}}
        write_outputs(staging, "merge", config, report, extra)
    return report


def run_inspect(config: InspectConfig) -> InspectReport:
    """Describes each adapter folder in `config.paths`."""
    return InspectReport(adapters=[describe(read_adapter(path)) for path in config.paths], as_json=config.json)
