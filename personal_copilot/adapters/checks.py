"""Whether adapters can be combined, scaled or put on a base: LoRA variants the arithmetic cannot carry, equal ranks
where a method needs them, and every adapter tensor's module and size against a base model (a loaded one, or a
weightless skeleton).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from personal_copilot.adapters.inputs import AdapterDir, same_base
from personal_copilot.errors import PcopilotError

if TYPE_CHECKING:
    from torch import nn

VARIANTS = {
    "use_dora": "DoRA (its magnitude vector does not add up)",
    "lora_bias": "a LoRA bias",
    "use_qalora": "QA-LoRA",
    "kasa_config": "KaSA",
    "velora_config": "VeLoRA",
    "monteclora_config": "MonteCLoRA",
    "alora_invocation_tokens": "activated LoRA",
    "use_bdlora": "block-diagonal LoRA",
    "arrow_config": "Arrow routing",
    "target_parameters": "LoRA on nn.Parameter targets",
    "layer_replication": "layer replication",
    "modules_to_save": "fully trained modules (modules_to_save)",
    "trainable_token_indices": "trained token embeddings (trainable_token_indices, e.g. from a chat run's new tokens)",
}
"""adapter_config.json keys of the LoRA variants whose update is not `scaling * B @ A`, or that carry weights which are
not low-rank updates (PEFT's add_weighted_adapter ignores or mis-scales them: huggingface/peft#3761)."""

_KEY = re.compile(
    r"^base_model\.model\.(?P<module>.+?)\."
    r"(?P<part>lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector|token_adapter)(?:\..+)?$"
)
_PREFIX = "base_model.model."


def variants_in(adapter: AdapterDir, allowed: tuple[str, ...] = ()) -> list[str]:
    """The LoRA variants `adapter` uses that are not in `allowed`, described for a person."""
    return [text for key, text in VARIANTS.items() if adapter.lora.get(key) and key not in allowed]


def refuse_variants(adapter: AdapterDir, action: str, allowed: tuple[str, ...] = ()) -> None:
    """Fails, naming them and what to do instead, when `adapter` uses variants `action` cannot carry."""
    found = variants_in(adapter, allowed)
    if adapter.lora.get("bias", "none") != "none":
        found.append(f"trained base biases (bias={adapter.lora['bias']!r})")
    if found:
        raise PcopilotError(
            f"cannot {action} {adapter.path}: it uses {'; '.join(found)}, which does not scale or add like a plain "
            "LoRA update. Merge it into its base instead (pcopilot adapters merge) and use the merged model as --base."
        )


def adapted_modules(shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Paths (in the base model) of the modules an adapter's tensors adapt."""
    return sorted({m.group("module") for name in shapes if (m := _KEY.match(name))})


def _features(module: nn.Module) -> tuple[int, int] | None:
    """(input features, output features) of a layer LoRA can adapt; None for another kind of module."""
    from torch import nn

    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, nn.Embedding):
        return module.num_embeddings, module.embedding_dim
    if hasattr(module, "nf") and getattr(module, "weight", None) is not None:  # transformers' Conv1D (GPT-2 style)
        return tuple(module.weight.shape)
    return None


def _expected_dim(part: str, shape: tuple[int, ...], features: tuple[int, int]) -> tuple[int, int]:
    """(found, expected) for the one dimension of a LoRA tensor that the base layer fixes: A reads the layer's input
    (r x in); B and the DoRA magnitude have its output size."""
    fan_in, fan_out = features
    if part in ("lora_A", "lora_embedding_A"):
        return shape[-1], fan_in
    return shape[0], fan_out


def _tensor_problem(name: str, shape: tuple[int, ...], modules: dict, parameters: dict) -> str | None:
    """Why one adapter tensor cannot load onto the base, or None."""
    match = _KEY.match(name)
    if not match:  # a fully saved module (modules_to_save): the base must have the same parameter
        target = name.removeprefix(_PREFIX)
        if target not in parameters:
            return f"{target}: no such parameter in the base"
        if tuple(parameters[target].shape) != shape:
            return f"{target}: adapter has {list(shape)}, base has {list(parameters[target].shape)}"
        return None
    module_name, part = match.group("module"), match.group("part")
    if module_name not in modules:
        return f"{module_name}: no such module in the base"
    module = modules[module_name]
    if part == "token_adapter":  # token rows (n x hidden) and, when training grew the vocabulary, the whole matrix
        weight = tuple(module.weight.shape)
        found, expected = (shape, weight) if name.endswith("base_layer.weight") else (shape[-1], weight[-1])
    else:
        features = _features(module)
        if features is None:
            return f"{module_name}: a {type(module).__name__}, not a layer LoRA adapts here"
        found, expected = _expected_dim(part, shape, features)
    if found != expected:
        return f"{name.removeprefix(_PREFIX)}: size {found}, the base layer needs {expected}"
    return None


def mismatches(shapes: dict[str, tuple[int, ...]], model: nn.Module, token_indices: Any = None) -> list[str]:
    """What keeps an adapter with these tensors from loading onto `model`: missing modules, other layer kinds, other
    sizes, token ids beyond the vocabulary. Empty when it fits."""
    modules, parameters = dict(model.named_modules()), dict(model.named_parameters(remove_duplicate=False))
    problems = [_tensor_problem(name, shape, modules, parameters) for name, shape in sorted(shapes.items())]
    if token_indices:
        vocabulary = model.get_input_embeddings().num_embeddings
        indices = token_indices if isinstance(token_indices, list) else [i for v in token_indices.values() for i in v]
        beyond = [i for i in indices if i >= vocabulary]
        if beyond:
            problems.append(f"token ids {beyond[:5]} are beyond the base vocabulary of {vocabulary}")
    return list(dict.fromkeys(p for p in problems if p))  # a missing module once, not once per tensor


def base_weight_copies(adapter: AdapterDir) -> list[str]:
    """Modules of which the adapter holds whole base weights, not updates: modules_to_save, and the embedding
    matrices PEFT saves when training grew the vocabulary. Loaded onto another base, they replace its weights."""
    names = adapter.tensor_shapes()
    copies = {n.removeprefix(_PREFIX).split(".token_adapter.")[0] for n in names if ".token_adapter.base_layer." in n}
    copies |= {n.removeprefix(_PREFIX).rsplit(".", 1)[0] for n in names if not _KEY.match(n)}
    return sorted(copies)


def refuse_base_copies_elsewhere(adapter: AdapterDir, base: str) -> None:
    """Fails when `adapter` holds whole weights of the base it was trained on and is to go on another base."""
    copies = base_weight_copies(adapter)
    if copies and not same_base(adapter.base_model, base):
        raise PcopilotError(
            f"{adapter.path} holds whole weights of its base {adapter.base_model} ({', '.join(copies)}: PEFT saves "
            f"them when training grew the vocabulary or trained full modules); on {base} they would replace that "
            "base's weights. Merge it into its own base (pcopilot adapters merge), or train it on the new base"
        )


def check_fits(adapter: AdapterDir, model: nn.Module, base: str) -> None:
    """Fails, listing the first mismatches, when `adapter` cannot load onto `model` (the base `base`)."""
    problems = mismatches(adapter.tensor_shapes(), model, adapter.trainable_token_indices)
    if problems:
        shown = "\n  ".join(problems[:8]) + (f"\n  … and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise PcopilotError(
            f"adapter {adapter.path} does not fit base {base}: module names and sizes must match (as between "
            f"starcoder and octocoder), {len(problems)} do not:\n  {shown}"
        )


def require_equal_ranks(adapters: list[AdapterDir], names: list[str], method: str) -> None:
    ranks = {name: a.rank for name, a in zip(names, adapters, strict=True)}
    if len(set(ranks.values())) > 1:
        listing = ", ".join(f"{name}: r={rank}" for name, rank in ranks.items())
        raise PcopilotError(
            f"--method {method} mixes the A and B factors and needs adapters of one rank, got {listing}; "
            "use --method cat (exact, rank = sum of ranks) or --method svd (rank = --svd_rank)"
        )


def combined_tokenizer(names: list[str], adapters: list[AdapterDir]) -> AdapterDir | None:
    """The adapter whose tokenizer the combination keeps: the one carrying trained token rows (at most one may), else
    the first with a tokenizer. Fails when another adapter's tokenizer maps a token to another id."""
    from transformers import AutoTokenizer

    carriers = [name for name, a in zip(names, adapters, strict=True) if a.trainable_token_indices]
    if len(carriers) > 1:
        raise PcopilotError(
            f"{' and '.join(carriers)} both carry trained token embeddings (trainable_token_indices), which cannot be "
            "combined; merge one of them into the base first (pcopilot adapters merge) and use it as --base"
        )
    with_tokenizer = [a for a in adapters if a.has_tokenizer]
    chosen = next((a for a in adapters if a.trainable_token_indices), with_tokenizer[0] if with_tokenizer else None)
    if chosen is None:
        return None
    vocabulary = AutoTokenizer.from_pretrained(str(chosen.path)).get_vocab()
    for name, adapter in zip(names, adapters, strict=True):
        if adapter.has_tokenizer and adapter is not chosen:
            other = AutoTokenizer.from_pretrained(str(adapter.path)).get_vocab()
            if not other.items() <= vocabulary.items():
                raise PcopilotError(f"the tokenizer of {name} ({adapter.path}) differs from that of {chosen.path}")
    return chosen
