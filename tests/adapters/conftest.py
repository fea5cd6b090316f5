"""Adapters with non-zero updates on the session's tiny models (PEFT's `init_lora_weights=False`, seeded), a sibling
base of the same shapes, and the hand computation of a LoRA update that the tests compare PEFT's results with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file


def make_adapter(base: Path, output: Path, seed: int, **lora: object) -> Path:
    """A LoRA adapter whose A and B are both random (so its update is not zero), saved as PEFT saves it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(seed)
    config = LoraConfig(init_lora_weights=False, task_type="CAUSAL_LM", **lora)
    get_peft_model(model, config).save_pretrained(output)
    return output


def lora_updates(adapter: Path) -> dict[str, torch.Tensor]:
    """Module -> s · B @ A, computed by hand from the adapter's files (s = alpha / r; alpha / sqrt(r) with rslora)."""
    config = json.loads((adapter / "adapter_config.json").read_text())
    scaling = config["lora_alpha"] / (config["r"] ** 0.5 if config.get("use_rslora") else config["r"])
    tensors = load_file(adapter / "adapter_model.safetensors")
    updates = {}
    for name, a in tensors.items():
        if name.endswith(".lora_A.weight"):
            module = name.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            b = tensors[name.replace(".lora_A.", ".lora_B.")]
            updates[module] = scaling * b.double() @ a.double()
    return updates


def weighted_sum(*terms: tuple[float, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Σ wᵢ ΔWᵢ per module (a module an adapter does not adapt contributes zero)."""
    total: dict[str, torch.Tensor] = {}
    for weight, updates in terms:
        for module, update in updates.items():
            total[module] = total.get(module, 0) + weight * update
    return total


def assert_updates_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], atol: float = 1e-5):
    assert sorted(actual) == sorted(expected)
    for module, update in expected.items():
        torch.testing.assert_close(actual[module], update, atol=atol, rtol=1e-5, msg=module)


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


@pytest.fixture(scope="session")
def probe_ids(tokenizer) -> torch.Tensor:
    return tokenizer("def add(a, b):\n    return a + b\n", return_tensors="pt").input_ids


@pytest.fixture(scope="session")
def llama_adapters(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """On the tiny Llama: `a` (r 4, alpha 8, q/v), `b` (r 4, alpha 16, q/k/v/o), `c` (r 8, alpha 8, all seven
    projections), `rslora` (r 4, alpha 8, q/v, rank-stabilised), `dora` (r 4, q/v)."""
    base, root = tiny_models["llama"], tmp_path_factory.mktemp("llama-adapters")
    attention = ["q_proj", "k_proj", "v_proj", "o_proj"]
    settings = {
        "a": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "b": {"r": 4, "lora_alpha": 16, "target_modules": attention},
        "c": {"r": 8, "lora_alpha": 8, "target_modules": [*attention, "gate_proj", "up_proj", "down_proj"]},
        "rslora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "use_rslora": True},
        "dora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "use_dora": True},
    }
    return {name: make_adapter(base, root / name, seed, **lora) for seed, (name, lora) in enumerate(settings.items())}


@pytest.fixture(scope="session")
def sibling_llama(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base of the tiny Llama's architecture and shapes with other weights (as octocoder is to starcoder)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(123)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_models["llama"]))
    path = tmp_path_factory.mktemp("sibling-llama")
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_models["llama"]).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def chat_adapter(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a `pcopilot train --task chat` run leaves: a tokenizer with two added ChatML tokens, and an adapter with
    LoRA updates plus the trained embedding rows of those tokens (trainable_token_indices) on the grown base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    output = tmp_path_factory.mktemp("chat-adapter")
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    new_ids = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    model.resize_token_embeddings(len(tokenizer))
    torch.manual_seed(11)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
        trainable_token_indices=new_ids,
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "trainable_tokens_delta" in name:
                parameter.copy_(torch.randn_like(parameter))
    peft_model.save_pretrained(output, save_embedding_layers=True)  # as PEFT does when the vocabulary grew
    tokenizer.save_pretrained(output)
    return output
