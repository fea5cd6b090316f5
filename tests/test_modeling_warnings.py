"""Loading a model with its adapter says nothing a user cannot act on: no FutureWarning from PEFT reading
transformers' deprecated `is_gradient_checkpointing` (the named workaround in modeling.py, and the bug it works
around, shown here so that the workaround goes once PEFT is fixed)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from personal_copilot.model_ref import load_adapters
from personal_copilot.modeling import workaround_peft_is_gradient_checkpointing


def tiny_model():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    shape = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_key_value_heads": 2}
    return LlamaForCausalLM(LlamaConfig(vocab_size=64, num_hidden_layers=1, **shape))


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from peft import LoraConfig, get_peft_model

    folder = tmp_path_factory.mktemp("adapter")
    with workaround_peft_is_gradient_checkpointing():
        lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        get_peft_model(tiny_model(), lora).save_pretrained(folder)
    return folder


def future_warnings(load) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load()
    return [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


def test_loading_an_adapter_gives_no_future_warning(adapter: Path) -> None:
    assert future_warnings(lambda: load_adapters(tiny_model(), {"tuned": adapter}, "tiny")) == []


def test_peft_itself_still_reads_the_deprecated_flag(adapter: Path) -> None:
    """The upstream bug: once this fails, PEFT no longer warns and `workaround_peft_is_gradient_checkpointing` goes."""
    from peft import PeftModel

    caught = future_warnings(lambda: PeftModel.from_pretrained(tiny_model(), str(adapter)))
    assert any("`is_gradient_checkpointing` is deprecated" in message for message in caught)
