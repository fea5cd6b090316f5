"""Export refuses what llama.cpp cannot convert before any work; what --model names is tested in test_model_ref."""

from __future__ import annotations

from pathlib import Path

import pytest

from personal_copilot.errors import PcopilotError
from personal_copilot.export import GgufConfig, run_export_gguf


def test_gpt_bigcode_with_a_feed_forward_llama_cpp_cannot_load_fails_before_converting(
    tiny_models, tmp_path: Path
) -> None:
    with pytest.raises(PcopilotError, match=r"as 4 x n_embd \(256\), but this model has n_inner 128"):
        run_export_gguf(GgufConfig(model=str(tiny_models["bigcode"]), output=tmp_path / "bigcode.gguf"))
    assert not any(tmp_path.iterdir())


def test_output_must_be_a_gguf_file() -> None:
    with pytest.raises(ValueError, match=r"--output must name a \.gguf file"):
        GgufConfig(model="m", output=Path("model.bin"))
