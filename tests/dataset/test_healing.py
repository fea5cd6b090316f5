"""Token healing: the healed prompt and the text the completion must write add up to the prefix; exactly the tokens
that agree with that text may start the completion; a completion generated under the processor writes it first."""

from __future__ import annotations

import pytest
import torch

from personal_copilot.dataset import HealingProcessor, TokenHealer, strip_healed

PREFIXES = ["def add(a, b):\n    ", "        return self.na", "x = ", "import os\n", "names = ['a', 'b'", "é"]


@pytest.fixture(scope="module")
def healer(tokenizer) -> TokenHealer:
    return TokenHealer(tokenizer)


def test_token_texts_add_up_to_the_text(healer: TokenHealer, tokenizer) -> None:
    text = "class Cache:\n    def get(self, key):\n        return self._items[key]  # hit\n"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert "".join(healer.texts[i] for i in ids) == text
    assert all(healer.texts[i] == "" for i in tokenizer.all_special_ids)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_split_leaves_out_the_last_token_and_keeps_its_text(healer: TokenHealer, tokenizer, prefix: str) -> None:
    ids = tokenizer.encode(prefix, add_special_tokens=False)
    kept, healed = healer.split(ids)
    assert kept == ids[:-1] and healed == healer.texts[ids[-1]] != ""
    assert tokenizer.decode(kept, clean_up_tokenization_spaces=False) + healed == prefix
    assert healer.split([]) == ([], "")
    special = tokenizer.all_special_ids[0]
    assert healer.split([*ids, special]) == ([*ids, special], "")  # a special token is never healed


@pytest.mark.parametrize("rest", ["    ", " ", "\n    ", "na", "e", "é"])
def test_the_mask_holds_exactly_the_tokens_that_agree(healer: TokenHealer, rest: str) -> None:
    width = len(healer.texts) + 3  # a model's padded vocabulary: the extra logits are never allowed
    mask = healer.mask(rest, width)
    agreeing = {i for i, t in enumerate(healer.texts) if t and (t.startswith(rest) or rest.startswith(t))}
    assert set(torch.nonzero(mask).flatten().tolist()) == agreeing and agreeing
    assert healer.agreeing(rest) == tuple(sorted(agreeing))


def test_no_agreeing_token_leaves_the_row_free_and_few_texts_are_remembered(tokenizer) -> None:
    healer = TokenHealer(tokenizer, cache_size=8)
    assert not any("😀" in text for text in healer.texts)  # an emoji is only byte pieces in this vocabulary
    assert healer.agreeing("😀") == () and healer.mask("😀", len(healer.texts)) is None
    for text in healer.texts[-100:]:  # a long-running server meets many healed texts: its memory stays bounded
        healer.agreeing(text)
    assert healer.agreeing.cache_info().currsize == 8


@pytest.mark.parametrize("seed", range(5))
def test_generation_under_the_processor_writes_the_healed_text_first(healer: TokenHealer, tokenizer, seed) -> None:
    """Random logits, greedy steps: every row's completion starts with its healed text, then goes free."""
    heals = ["    ", "", " na", "\n    ", "é"]
    width = len(healer.texts)
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.zeros((len(heals), 4), dtype=torch.long)
    processor = HealingProcessor(healer, 4, heals)
    for _ in range(6):
        scores = processor(input_ids, torch.randn(len(heals), width, generator=generator))
        input_ids = torch.cat([input_ids, scores.argmax(-1, keepdim=True)], dim=1)
    for row, heal in enumerate(heals):
        text = "".join(healer.texts[i] for i in input_ids[row, 4:].tolist())
        assert text.startswith(heal), (heal, text)
        assert strip_healed(text, heal) == text[len(heal) :]
    assert processor.rests == [""] * len(heals)


def test_strip_healed_takes_off_what_was_written_of_it() -> None:
    assert strip_healed("    return x", "    ") == "return x"
    assert strip_healed("  ", "    ") == ""  # cut short before the healed text was all written
    assert strip_healed("abc", "") == "abc"
