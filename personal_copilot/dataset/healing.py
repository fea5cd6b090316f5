"""Token healing: a FIM prefix cut where an editor's cursor is rarely ends where the tokenizer would end a token.

A byte-level BPE tokenizes `    return x` as `   ` + ` return` + ` x`, but a prefix that ends at the cursor after the
indentation (`    `) as one whitespace token; a cursor inside a word (`sel|f.name`) leaves a token the model never saw
before that text. The model then continues a token sequence unlike any it was trained on, and its first token is
often wrong (a second space, a broken word). Healing backs the prompt up by the prefix's last token and lets the
completion start only with tokens that agree with the text removed (`t.startswith(rest)` or `rest.startswith(t)`),
so the model writes the canonical tokens itself; the removed text is then taken off the completion.

Importing this module imports no torch: a mask is built only when a processor asks for one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

_ANCHOR = "a"
"""Text decoded before each token, so that tokenizers that drop a leading space at the start of a text
(SentencePiece) still show it."""


class TokenHealer:
    """The vocabulary as text, and the tokens that may start a healed completion.

    Args:
        tokenizer: the model's tokenizer.
        cache_size: how many healed texts' agreeing tokens to remember (a server sees few distinct ones often).
    """

    def __init__(self, tokenizer: Any, cache_size: int = 4096) -> None:
        anchor = tokenizer.encode(_ANCHOR, add_special_tokens=False)
        width = len(tokenizer.decode(anchor, clean_up_tokenization_spaces=False))
        decoded = tokenizer.batch_decode(
            [[*anchor, i] for i in range(len(tokenizer))], clean_up_tokenization_spaces=False
        )
        special = set(tokenizer.all_special_ids)
        self.texts = ["" if i in special or "\ufffd" in text else text[width:] for i, text in enumerate(decoded)]
        """Each token's text; "" for special tokens and byte pieces of a character (never used to heal)."""
        by_text = sorted((text, i) for i, text in enumerate(self.texts) if text)
        self._sorted_texts = [text for text, _ in by_text]
        self._sorted_ids = [i for _, i in by_text]
        self._ids_of: dict[str, list[int]] = {}
        for text, i in by_text:
            self._ids_of.setdefault(text, []).append(i)
        self.agreeing = lru_cache(maxsize=cache_size)(self._agreeing)
        """The sorted ids of the tokens that agree with a healed text (the last `cache_size` texts' remembered)."""

    def _agreeing(self, rest: str) -> tuple[int, ...]:
        # The texts `rest` starts with are its prefixes; the texts that start with `rest` are a run of the sorted ones.
        shorter = [i for end in range(1, len(rest)) for i in self._ids_of.get(rest[:end], ())]
        first = stop = bisect_left(self._sorted_texts, rest)
        while stop < len(self._sorted_texts) and self._sorted_texts[stop].startswith(rest):
            stop += 1
        return tuple(sorted([*shorter, *self._sorted_ids[first:stop]]))

    def split(self, prefix_ids: Sequence[int]) -> tuple[list[int], str]:
        """The prefix without its last token, and that token's text (what the completion must start with); the
        prefix unchanged and "" when its last token cannot be healed (a special token, part of a character)."""
        if not prefix_ids or not self.texts[prefix_ids[-1]]:
            return list(prefix_ids), ""
        return list(prefix_ids[:-1]), self.texts[prefix_ids[-1]]

    def rest_after(self, rest: str, token: int) -> str:
        """The healed text still to write after `token` was generated."""
        text = self.texts[token] if token < len(self.texts) else ""
        return rest[len(text) :] if rest.startswith(text) and text else ""

    def mask(self, rest: str, width: int) -> Any:
        """Boolean tensor over `width` logits: the tokens that agree with `rest`, the healed text still to write;
        None when no token does (the rest of a character no token starts with): the row is then left free."""
        agreeing = [i for i in self.agreeing(rest) if i < width]
        if not agreeing:
            return None
        import torch

        allowed = torch.zeros(width, dtype=torch.bool)
        allowed[agreeing] = True
        return allowed


class HealingProcessor:
    """A logits processor for one `generate` call: while a row still owes some of its healed text, only tokens that
    agree with it may be chosen.

    Args:
        healer: the vocabulary's healer.
        prompt_width: columns of the (left-padded) prompt.
        heals: each row's healed text ("" for a row that was not healed).
    """

    def __init__(self, healer: TokenHealer, prompt_width: int, heals: Sequence[str]) -> None:
        self.healer, self.prompt_width = healer, prompt_width
        self.rests = list(heals)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if input_ids.shape[1] > self.prompt_width:
            last = input_ids[:, -1].tolist()
            self.rests = [self.healer.rest_after(rest, token) for rest, token in zip(self.rests, last, strict=True)]
        for row, rest in enumerate(self.rests):
            mask = self.healer.mask(rest, scores.shape[1]) if rest else None
            if mask is None:
                self.rests[row] = ""
            else:
                scores[row] = scores[row].masked_fill(~mask.to(scores.device), float("-inf"))
        return scores


def strip_healed(text: str, healed: str) -> str:
    """The completion without the healed text it starts with (or as much of it as was written)."""
    shared = 0
    while shared < min(len(text), len(healed)) and text[shared] == healed[shared]:
        shared += 1
    return text[shared:]
