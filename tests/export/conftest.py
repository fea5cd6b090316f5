"""A GGUF converted once per session from the finished LoRA run, and the transformers model it must agree with."""

from __future__ import annotations

from pathlib import Path

import pytest

from personal_copilot.export import GgufConfig, GgufReport, run_export_gguf


@pytest.fixture(scope="session")
def gguf_f16(lora_run: Path, tmp_path_factory: pytest.TempPathFactory) -> GgufReport:
    """`pcopilot export gguf` of the LoRA run (adapter merged), with the default f16 weights."""
    output = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    return run_export_gguf(GgufConfig(model=str(lora_run), output=output))


@pytest.fixture(scope="session")
def tuned_model(lora_run: Path):
    """The base model with the run's adapter, as transformers and PEFT run it (not merged)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from personal_copilot.configs import read_run_record

    base = AutoModelForCausalLM.from_pretrained(read_run_record(lora_run).base_model)
    return PeftModel.from_pretrained(base, str(lora_run)).eval()


@pytest.fixture(scope="session")
def run_tokenizer(lora_run: Path):
    from personal_copilot.dataset import load_tokenizer

    return load_tokenizer(str(lora_run))
