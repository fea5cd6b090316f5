"""Completing code locally from a GGUF with llama-cpp-python, the way llama.cpp's server does it: a FIM prompt is
`FIM_PRE prefix FIM_SUF suffix FIM_MID` built from the GGUF's FIM token ids (as `/infill` builds it), and generation
stops at llama.cpp's own end-of-generation tokens.

llama-cpp-python's `create_completion(suffix=...)` is not used: in 0.3.x it puts token id 0 where the three FIM
sentinels belong (`prefix_token_id: int = 0  # self._model.token_prefix() # TODO: Fix` in `Llama._create_completion`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personal_copilot.errors import PcopilotError
from personal_copilot.export.gguf_metadata import GgufInfo, fim_keys

DEFAULT_CONTEXT_CAP = 4096
"""Default context window: the model's own, at most this (a laptop's prompt budget, Ollama's default num_ctx)."""


def default_context_window(info: GgufInfo | None, requested: int | None, fallback: int = 2048) -> int:
    """`requested`, else the GGUF's context length capped at DEFAULT_CONTEXT_CAP, else `fallback`."""
    if requested:
        return requested
    if info is not None and info.context_length:
        return min(info.context_length, DEFAULT_CONTEXT_CAP)
    return fallback


def open_model(path: Path, context_window: int, *, threads: int | None = None, seed: int = 0) -> Any:
    """A llama-cpp-python model with its context (close it with `.close()`)."""
    from llama_cpp import Llama

    try:
        return Llama(model_path=str(path), n_ctx=context_window, n_threads=threads, seed=seed, verbose=False)
    except ValueError as error:
        raise PcopilotError(f"llama.cpp cannot load {path}: {error}") from error


def fim_prompt_ids(llm: Any, info: GgufInfo, prefix: str, suffix: str) -> list[int]:
    """`FIM_PRE prefix FIM_SUF suffix FIM_MID` with the GGUF's FIM ids; sentinel text in the code stays text."""
    keys = fim_keys()
    pre, suf, mid = (info.token_ids[keys[role][0]] for role in ("prefix", "suffix", "middle"))

    def encode(text: str) -> list[int]:
        return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    return [pre, *encode(prefix), suf, *encode(suffix), mid]


def plain_prompt_ids(llm: Any, prompt: str) -> list[int]:
    """The prompt's ids, special-token text parsed as special tokens (a hand-written FIM prompt works)."""
    return llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)


@dataclass
class Generation:
    ids: list[int]
    text: str
    finish_reason: str
    """stop (an end-of-generation token) or length (max_tokens or the context window)."""
    seconds: float


def generate(llm: Any, prompt_ids: list[int], *, max_tokens: int, temperature: float = 0.0) -> Generation:
    """Generates after `prompt_ids`: greedy at temperature 0, else top-k 40 / top-p 0.95 sampling.

    Raises:
        PcopilotError: the prompt does not fit the context window.
    """
    import llama_cpp

    room = llm.n_ctx() - len(prompt_ids)
    if room < 1:
        raise PcopilotError(
            f"the prompt is {len(prompt_ids)} tokens, the context window {llm.n_ctx()}: shorten it or raise "
            "--context_window"
        )
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    ids: list[int] = []
    finish_reason = "length"
    start = time.perf_counter()
    for token in llm.generate(prompt_ids, temp=temperature, top_k=40, top_p=0.95, reset=True):
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            finish_reason = "stop"
            break
        ids.append(token)
        if len(ids) >= min(max_tokens, room):
            break
    seconds = time.perf_counter() - start
    text = llm.detokenize(ids).decode("utf-8", errors="replace")
    return Generation(ids=ids, text=text, finish_reason=finish_reason, seconds=seconds)
