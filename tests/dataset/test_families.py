"""The model-family registry, checked against tokenizers built offline: one trained locally per family with its
special tokens, and tokenizers rebuilt with the special-token ids of the published tokenizer files."""

from __future__ import annotations

import json

import pytest

from personal_copilot.dataset import FAMILIES, FimEncoder, detect_family, get_family, train_tokenizer
from personal_copilot.errors import PcopilotError

CORPUS = ["def total(items):\n    return sum(item.price for item in items)\n"] * 10 + ["x = 1  # héllo 🙂\n"] * 5


def _wrap(backend, **special):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=backend, **special)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_on_a_tokenizer_with_its_special_tokens(name: str) -> None:
    """Detection, single ids, and the text prompt a client sends encoding to the ids training uses.

    CodeLlama's real tokenizer is SentencePiece, where the space of ` <SUF>` becomes the `▁` of its vocabulary entry
    `▁<SUF>`; it cannot be built offline, so for CodeLlama the text template is checked as text only.
    """
    family = FAMILIES[name]
    tokenizer = train_tokenizer(CORPUS, family, 400)
    encoder = FimEncoder(tokenizer)
    assert encoder.family is family
    for token in family.special_tokens:
        assert tokenizer(token, add_special_tokens=False).input_ids == [tokenizer.convert_tokens_to_ids(token)]
    prefix, suffix = "def total(items):\n    return ", "\n\nprint(total([]))\n"
    for layout in ("psm", "spm"):
        text = family.fim_prompt(prefix, suffix, layout)
        if name == "codellama":
            expected = {"psm": f"<PRE> {prefix} <SUF>{suffix} <MID>", "spm": f"<PRE> <SUF>{suffix} <MID> {prefix}"}
            assert text == expected[layout]
        else:
            assert tokenizer(text, add_special_tokens=False).input_ids == encoder.prompt_ids(prefix, suffix, layout)


# Special-token ids of the published tokenizer files (tokenizer.json / tokenizer_config.json on the Hugging Face
# Hub): Qwen/Qwen2.5-Coder-*, deepseek-ai/deepseek-coder-*-base, codellama/CodeLlama-7b-hf, bigcode/starcoder2-*.
PUBLISHED = {
    "qwen": {
        "<|endoftext|>": 151643,
        "<|fim_prefix|>": 151659,
        "<|fim_middle|>": 151660,
        "<|fim_suffix|>": 151661,
        "<|fim_pad|>": 151662,
        "<|repo_name|>": 151663,
        "<|file_sep|>": 151664,
    },
    # DeepSeek numbers the hole (suffix) before the begin (prefix): the original scripts once swapped them.
    "deepseek": {
        "<｜end▁of▁sentence｜>": 32014,
        "<｜fim▁hole｜>": 32015,
        "<｜fim▁begin｜>": 32016,
        "<｜fim▁end｜>": 32017,
    },
    "codellama": {"</s>": 2, "▁<PRE>": 32007, "▁<SUF>": 32008, "▁<MID>": 32009, "▁<EOT>": 32010},
    "starcoder": {
        "<|endoftext|>": 0,
        "<fim_prefix>": 1,
        "<fim_middle>": 2,
        "<fim_suffix>": 3,
        "<fim_pad>": 4,
        "<repo_name>": 5,
        "<file_sep>": 6,
    },
}


def _published_tokenizer(specials: dict[str, int]):
    """A word-level tokenizer whose special tokens sit at the published ids."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    vocab = {**specials, "<unk>": max(specials.values()) + 1, "def": max(specials.values()) + 2}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in specials])
    return _wrap(backend)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_registry_against_published_special_token_ids(name: str) -> None:
    ids = PUBLISHED[name]
    encoder = FimEncoder(_published_tokenizer(ids), repo_context=FAMILIES[name].repo_context is not None)
    family = encoder.family
    assert family.name == name
    assert (encoder.prefix_id, encoder.suffix_id, encoder.middle_id, encoder.eos_id) == (
        ids[family.fim.prefix],
        ids[family.fim.suffix],
        ids[family.fim.middle],
        ids[family.eos],
    )
    assert encoder.end_ids == ([ids[family.fim.end]] if family.fim.end else [])
    assert encoder.pad_id == ids.get(family.fim.pad, ids[family.eos])
    if family.repo_context:
        context, _ = encoder.context("r", "p")
        assert {ids[family.repo_name], ids[family.file_sep]} <= set(context)


def test_deepseek_layout_uses_begin_hole_end() -> None:
    prompt = get_family("deepseek").fim_prompt("a = ", "\nprint(a)")
    assert prompt == "<｜fim▁begin｜>a = <｜fim▁hole｜>\nprint(a)<｜fim▁end｜>"


def test_names_and_aliases() -> None:
    assert get_family("StarCoder2") is FAMILIES["starcoder"]
    assert get_family("qwen2.5-coder") is FAMILIES["qwen"]
    with pytest.raises(PcopilotError, match="unknown model family 'gpt2'"):
        get_family("gpt2")


def test_a_vocabulary_that_fits_two_families_needs_a_choice() -> None:
    vocabulary = set(FAMILIES["qwen"].special_tokens) | set(FAMILIES["codegemma"].special_tokens)
    with pytest.raises(PcopilotError, match=r"qwen, codegemma.*--family"):
        detect_family(vocabulary)


def test_tokenizer_without_sentinels_is_rejected() -> None:
    """Never silently train without FIM: a tokenizer without the sentinels is an error that says so."""
    plain = train_tokenizer(CORPUS, FAMILIES["santacoder"], 400)
    backend = plain.backend_tokenizer
    state = json.loads(backend.to_str())
    state["added_tokens"] = [t for t in state["added_tokens"] if t["content"] == "<|endoftext|>"]
    state["model"]["vocab"] = {t: i for t, i in state["model"]["vocab"].items() if not t.startswith("<fim")}
    gpt2_like = _wrap(type(backend).from_str(json.dumps(state)), eos_token="<|endoftext|>")
    with pytest.raises(PcopilotError, match=r"FIM sentinels of no known model family.*--fim.rate 0"):
        FimEncoder(gpt2_like)
    with pytest.raises(PcopilotError, match=r"lacks the FIM sentinels of model family 'starcoder'.*<fim_prefix>"):
        FimEncoder(gpt2_like, "starcoder")
    without_fim = FimEncoder(gpt2_like, require_fim=False)
    assert without_fim.family is None and without_fim.eos_id == gpt2_like.eos_token_id
    with pytest.raises(PcopilotError, match="require_fim=False"):
        without_fim.prompt_ids("a", "b")


def test_sentinel_that_is_not_a_single_token_is_rejected() -> None:
    """A sentinel in the vocabulary but not registered as an added token is split by the tokenizer: an error."""
    tokenizer = train_tokenizer(CORPUS, FAMILIES["starcoder"], 400)
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    state["added_tokens"] = [t for t in state["added_tokens"] if t["content"] != "<fim_middle>"]
    broken = _wrap(type(tokenizer.backend_tokenizer).from_str(json.dumps(state)))
    with pytest.raises(PcopilotError, match=r"'<fim_middle>'.*not to its single id 2"):
        FimEncoder(broken, "starcoder")
