"""Training a byte-level BPE tokenizer with a model family's special tokens (for tests, the offline quickstart, and
pretraining a small model from scratch).

Recipe (tokenizers): BPE over GPT-2 byte-level pre-tokenization, the 256 byte symbols always in the vocabulary (any
text encodes, decoding gives it back exactly), the family's special tokens first (end-of-text is id 0, then the FIM
sentinels in StarCoder's order), wrapped as a transformers fast tokenizer so `AutoTokenizer.from_pretrained` loads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from personal_copilot.dataset.families import ModelFamily


def train_tokenizer(
    texts: Iterable[str], family: ModelFamily, vocab_size: int, *, min_frequency: int = 2, length: int | None = None
) -> Any:
    """A transformers fast tokenizer trained on `texts` (`length`: their number, for progress only)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = family.special_tokens
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer, length=length)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=family.eos,
        eos_token=family.eos,
        unk_token=family.eos,
        pad_token=family.fim.pad or family.eos,
        extra_special_tokens=[t for t in specials if t != family.eos],
        clean_up_tokenization_spaces=False,
    )
