"""Tiny models for the training tests, built from config once per session (dims multiples of 64, no dropout)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models(tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Llama-style and a GPT-BigCode (StarCoder architecture) model of about half a million parameters, each saved
    with the session tokenizer, so `--model PATH` loads them like a hub model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPTBigCodeConfig, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    configs = {
        "llama": LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            tie_word_embeddings=True,
            **ids,
        ),
        "bigcode": GPTBigCodeConfig(
            vocab_size=len(tokenizer),
            n_embd=64,
            n_inner=128,
            n_layer=2,
            n_head=4,
            n_positions=512,
            multi_query=True,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **ids,
        ),
    }
    paths = {}
    for name, config in configs.items():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
        path = tmp_path_factory.mktemp(f"tiny-{name}")
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths[name] = path
    return paths
