"""The llama.cpp pre-tokenizer (`tokenizer.ggml.pre`) that splits text like a tokenizer.json, and the check that the
converted GGUF tokenizes exactly like the HF tokenizer.

llama.cpp implements pre-tokenizers by name (`src/llama-vocab.cpp`); two of them are the splitting code tokenizers
are built on: `gpt-2` is GPT-2's byte-level regex (what `pcopilot tokenizer` trains with), `starcoder` splits digits
one by one first and then applies that regex (StarCoder / SantaCoder). Anything else is not guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from personal_copilot.errors import PcopilotError

_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
_DIGITS = {"type": "Digits", "individual_digits": True}
_LLAMA_CPP_PRE_TOKENIZERS: dict[str, tuple[dict[str, Any], ...]] = {
    "gpt-2": (_BYTE_LEVEL,),
    "starcoder": (_DIGITS, _BYTE_LEVEL),
}
PROBE_TEXTS = (
    "def total_count(items: list[int]) -> int:\n    return sum(items) + 3 + 33 + 333 + 3333 + 1234567\n",
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n",
    "if (x != y && z >= 0.5e-3) { return a[i++]; }\r\n\r\n",
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
    "naïve café — héllo wörld 日本語のコメント Ελληνικά 🦙🦙 😶\u200d🌫️ 🙂",
    "------======= \"\"\"\"......!!!!!!?????? ```````''''''",
)


def _matches(step: dict[str, Any], pattern: dict[str, Any]) -> bool:
    return all(step.get(key) == value for key, value in pattern.items())


def llama_cpp_pre_tokenizer(tokenizer_json: dict[str, Any]) -> str | None:
    """The llama.cpp pre-tokenizer whose splitting equals this tokenizer.json's, or None when there is none."""
    if tokenizer_json.get("normalizer") is not None:
        return None
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    for name, pattern in _LLAMA_CPP_PRE_TOKENIZERS.items():
        if len(steps) == len(pattern) and all(_matches(s, p) for s, p in zip(steps, pattern, strict=True)):
            return name
    return None


def check_tokenizer_parity(llm: Any, tokenizer: Any, texts: Iterable[str]) -> int:
    """Tokenizes each text with llama.cpp (`llm`, a loaded GGUF) and with the HF tokenizer, special-token text
    parsed as special tokens by both; returns the number of texts.

    Raises:
        PcopilotError: a text gets different token ids (the GGUF would read prompts differently).
    """
    checked = 0
    for text in texts:
        expected = tokenizer.encode(text, add_special_tokens=False)
        got = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if got != expected:
            position = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
            position = min(len(got), len(expected)) if position is None else position
            raise PcopilotError(
                f"llama.cpp tokenizes {text!r} differently from the HF tokenizer from token {position} on "
                f"(llama.cpp {got[position : position + 8]} vs HF {expected[position : position + 8]}): the GGUF's "
                "tokenizer.ggml.pre does not match the tokenizer's pre-tokenizer. Pass a llama.cpp checkout that "
                "knows this tokenizer with --llama_cpp_dir"
            )
        checked += 1
    return checked
