"""Benchmark of token healing at a Qwen-sized vocabulary: how long the healer takes to build, and to find the tokens
that agree with a healed text through its sorted index against a scan of the whole vocabulary (the baseline), on the
same healed texts in the same run. The texts are the last tokens of prefixes cut at random places in the standard
library, as an editor's cursor cuts them.

    python benchmarks/healing.py                     # trains a 150k-token byte-level BPE on the standard library first
    python benchmarks/healing.py --tokenizer PATH    # a real model's tokenizer instead
"""

from __future__ import annotations

import argparse
import os
import random
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from personal_copilot.console import print_table
from personal_copilot.dataset import TokenHealer


def standard_library_texts() -> list[str]:
    texts = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if text:
            texts.append(text)
    return texts


def train_tokenizer(texts: list[str], vocab_size: int, output: Path) -> Path:
    """A byte-level BPE of `vocab_size` tokens trained on `texts`, saved as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], initial_alphabet=alphabet)
    bpe.train_from_iterator(texts, trainer)
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>").save_pretrained(output)
    return output


def healed_texts(healer: TokenHealer, tokenizer, texts: list[str], cuts: int, seed: int) -> list[str]:
    """The distinct healed texts of `cuts` prefixes cut at random places."""
    rng = random.Random(seed)
    found = set()
    for _ in range(cuts):
        text = rng.choice(texts)
        cursor = rng.randrange(1, len(text))
        ids = tokenizer.encode(text[max(0, cursor - 64) : cursor], add_special_tokens=False)
        found.add(healer.split(ids)[1])
    return sorted(found - {""})


def scan(texts: list[str], rest: str) -> tuple[int, ...]:
    """The baseline: every token's text compared with the healed text."""
    return tuple(i for i, t in enumerate(texts) if t and (t.startswith(rest) or rest.startswith(t)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder (default: train one)")
    parser.add_argument("--vocab_size", type=int, default=150_000, help="tokens of the trained tokenizer")
    parser.add_argument("--cuts", type=int, default=500, help="random cursor positions")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    texts = standard_library_texts()
    with tempfile.TemporaryDirectory() as work:
        path = args.tokenizer or train_tokenizer(texts, args.vocab_size, Path(work) / "tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(path)
    start = time.perf_counter()
    healer = TokenHealer(tokenizer)
    built = time.perf_counter() - start
    rests = healed_texts(healer, tokenizer, texts, args.cuts, seed=0)

    start = time.perf_counter()
    scanned = [scan(healer.texts, rest) for rest in rests]
    scanning = (time.perf_counter() - start) / len(rests)
    start = time.perf_counter()
    indexed = [healer.agreeing(rest) for rest in rests]
    indexing = (time.perf_counter() - start) / len(rests)
    assert indexed == scanned, "the index and the scan disagree"

    print_table(
        f"token healing, vocabulary of {len(tokenizer):,} tokens, {len(rests)} distinct healed texts",
        ["step", "time", "vs scan"],
        [
            ("build the healer (once per model)", f"{built:.2f} s", "-"),
            ("tokens agreeing with a healed text: scan (baseline)", f"{scanning * 1e3:.2f} ms", "1.00×"),
            ("tokens agreeing with a healed text: index", f"{indexing * 1e3:.3f} ms", f"{indexing / scanning:.4f}×"),
        ],
    )


if __name__ == "__main__":
    main()
