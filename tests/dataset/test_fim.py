"""FIM transforms: golden examples at a fixed seed, the round-trip property, determinism, rates and line spans."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personal_copilot.dataset import (
    Document,
    FimConfig,
    FimEncoder,
    apply_fim,
    choose_layout,
    choose_span,
    document_rng,
    get_family,
    train_tokenizer,
    window_pieces,
)

CALC = 'def add(a, b):\n    """Sum of a and b."""\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n'
CALC_DOCUMENT = Document("acme/calc", "src/calc.py", CALC)


@pytest.fixture(scope="module")
def calc_encoder() -> FimEncoder:
    """A 300-token StarCoder-family tokenizer trained on CALC alone, so the golden token cuts are easy to read."""
    corpus = [CALC] * 20 + ["def return a b sum mul add"] * 5
    return FimEncoder(train_tokenizer(corpus, get_family("starcoder"), 300))


# Seed 4 draws the character span (47, 80) with `uniform` and the whole line "    return a * b\n" with `line`;
# token level draws its own cut points over the 35 token ids. PSM and SPM share the cuts (same draws).
GOLDEN = {
    ("char", "uniform", "psm"): (
        '<fim_prefix>def add(a, b):\n    """Sum of a and b."""\n    re'
        "<fim_suffix>eturn a * b\n"
        "<fim_middle>turn a + b\n\n\ndef mul(a, b):\n    r"
    ),
    ("char", "uniform", "spm"): (
        "<fim_prefix><fim_suffix>eturn a * b\n"
        '<fim_middle>def add(a, b):\n    """Sum of a and b."""\n    return a + b\n\n\ndef mul(a, b):\n    r'
    ),
    ("token", "uniform", "psm"): (
        '<fim_prefix>def add(a, b):\n    """'
        "<fim_suffix> mul(a, b):\n    return a * b\n"
        '<fim_middle>Sum of a and b."""\n    return a + b\n\n\ndef'
    ),
    ("token", "uniform", "spm"): (
        "<fim_prefix><fim_suffix> mul(a, b):\n    return a * b\n"
        '<fim_middle>def add(a, b):\n    """Sum of a and b."""\n    return a + b\n\n\ndef'
    ),
    ("char", "line", "psm"): (
        '<fim_prefix>def add(a, b):\n    """Sum of a and b."""\n    return a + b\n\n\ndef mul(a, b):\n'
        "<fim_suffix>"
        "<fim_middle>    return a * b\n"
    ),
    # Token level: the line span moves to token boundaries; the token "\n   " straddles the line start.
    ("token", "line", "psm"): (
        '<fim_prefix>def add(a, b):\n    """Sum of a and b."""\n    return a + b\n\n\ndef mul(a, b):\n   '
        "<fim_suffix>"
        "<fim_middle> return a * b\n"
    ),
}


@pytest.mark.parametrize(("level", "span", "layout"), list(GOLDEN))
def test_golden_examples(calc_encoder: FimEncoder, level: str, span: str, layout: str) -> None:
    config = FimConfig(rate=1.0, spm_rate=1.0 if layout == "spm" else 0.0, level=level, span=span)
    [example] = apply_fim([CALC_DOCUMENT], calc_encoder, config, seed=4)
    assert example.layout == layout
    assert calc_encoder.decode(example.input_ids) == GOLDEN[level, span, layout]


SENTINEL_TEXT = st.sampled_from(["<fim_prefix>", "<fim_middle>", "<|endoftext|>", "<file_sep>"])
CODE_TEXT = st.text(alphabet=st.sampled_from(list("abc xyz_():=+\n\t    \"'#é日🙂")), max_size=40)
DOCUMENTS = st.lists(st.one_of(CODE_TEXT, SENTINEL_TEXT, st.just("\n    ")), max_size=12).map("".join)


def undo_fim(ids: list[int], encoder: FimEncoder) -> list[int]:
    """Removes the sentinels of a FIM example and puts the middle back between prefix and suffix."""
    assert ids[0] == encoder.prefix_id
    assert [ids.count(s) for s in (encoder.prefix_id, encoder.suffix_id, encoder.middle_id)] == [1, 1, 1]
    suffix_at, middle_at = ids.index(encoder.suffix_id), ids.index(encoder.middle_id)
    if suffix_at == 1:  # SPM: P S suffix M prefix middle
        return ids[middle_at + 1 :] + ids[2:middle_at]
    prefix, suffix, middle = ids[1:suffix_at], ids[suffix_at + 1 : middle_at], ids[middle_at + 1 :]
    return prefix + middle + suffix


@pytest.mark.parametrize("level", ["char", "token"])
@pytest.mark.parametrize("span", ["uniform", "line"])
@pytest.mark.parametrize("layout", ["psm", "spm"])
@settings(max_examples=60, deadline=None)
@given(text=DOCUMENTS, path=st.text(min_size=1, max_size=8), seed=st.integers(0, 2**32))
def test_round_trip_gives_back_the_document(
    encoder: FimEncoder, level: str, span: str, layout: str, text: str, path: str, seed: int
) -> None:
    config = FimConfig(rate=1.0, spm_rate=1.0 if layout == "spm" else 0.0, level=level, span=span)
    [example] = apply_fim([Document("repo", path, text)], encoder, config, seed)
    assert example.layout == layout
    restored = undo_fim(example.input_ids, encoder)
    assert encoder.decode(restored) == text
    if level == "token":
        assert restored == encoder.encode([text])[0]


def test_sentinel_text_in_a_document_stays_text(encoder: FimEncoder) -> None:
    """A file that contains `<fim_prefix>` must not produce the sentinel id (prompt injection into training)."""
    text = 'PROMPT = "<fim_prefix>" + p + "<fim_suffix>"  # <|endoftext|>\n'
    [ids] = encoder.encode([text])
    assert not {encoder.prefix_id, encoder.suffix_id, encoder.middle_id, encoder.eos_id} & set(ids)
    assert encoder.decode(ids) == text


def test_sentinel_text_stays_text_after_pickling(encoder: FimEncoder) -> None:
    """DataLoader workers started with spawn get a pickled encoder; tokenizers' pickle drops the flag that keeps
    special-token strings as text, so the encoder sets it again."""
    import pickle

    copy = pickle.loads(pickle.dumps(encoder))
    assert copy.encode(["<fim_prefix>"]) == encoder.encode(["<fim_prefix>"]) != [[encoder.prefix_id]]


def test_a_document_gets_the_same_example_in_any_batch(encoder: FimEncoder) -> None:
    documents = [Document("r", f"f{i}.py", CALC * (i + 1)) for i in range(6)]
    config = FimConfig(rate=0.5, spm_rate=0.5, level="token", span="line")
    together = apply_fim(documents, encoder, config, seed=7)
    alone = [apply_fim([d], encoder, config, seed=7)[0] for d in reversed(documents)][::-1]
    assert together == alone
    assert apply_fim(documents, encoder, config, seed=8) != together


def test_rates_give_the_expected_shares() -> None:
    config = FimConfig(rate=0.5, spm_rate=0.25)
    layouts = [choose_layout(document_rng(0, "repo", f"file_{i}.py"), config) for i in range(4000)]
    assert layouts.count(None) / 4000 == pytest.approx(0.5, abs=0.03)
    assert layouts.count("spm") / (4000 - layouts.count(None)) == pytest.approx(0.25, abs=0.03)
    assert {choose_layout(document_rng(0, "r", str(i)), FimConfig(rate=0.0)) for i in range(200)} == {None}


def test_rate_zero_encodes_plain_documents(encoder: FimEncoder) -> None:
    [example] = apply_fim([CALC_DOCUMENT], encoder, FimConfig(rate=0.0), seed=0)
    assert example.layout is None and example.input_ids == encoder.encode([CALC])[0]


@settings(max_examples=300, deadline=None)
@given(text=DOCUMENTS, seed=st.integers(0, 2**32))
def test_line_spans_are_what_an_editor_asks_for(text: str, seed: int) -> None:
    """A line span is within one line (part of it, or its rest up to the newline), or runs from a line start to
    just after a newline (or the end of the file)."""
    start, end = choose_span(text, random.Random(seed), "line")
    assert 0 <= start <= end <= len(text)
    if not any(line.strip() for line in text.split("\n")):
        return  # no line with code: the span falls back to uniform
    middle = text[start:end]
    within_one_line = "\n" not in middle and start < end
    whole_lines = (start == 0 or text[start - 1] == "\n") and (end == len(text) or text[end - 1] == "\n")
    assert within_one_line or whole_lines


def test_repository_context_is_put_before_the_document(tokenizer) -> None:
    encoder = FimEncoder(tokenizer, repo_context=True)
    document = Document("acme/shop", "src/cart.py", "total = 1\n")
    [plain] = apply_fim([document], encoder, FimConfig(rate=0.0), seed=0, repo_context=True)
    assert encoder.decode(plain.input_ids) == "<repo_name>acme/shop<file_sep>src/cart.py\ntotal = 1\n"
    [fim] = apply_fim([document], encoder, FimConfig(rate=1.0, spm_rate=0.0), seed=0, repo_context=True)
    context = fim.input_ids[: fim.input_ids.index(encoder.prefix_id)]
    assert encoder.decode(context) == "<repo_name>acme/shop<file_sep>"  # StarCoder2: the path is inside the file
    assert encoder.decode(undo_fim(fim.input_ids[len(context) :], encoder)) == "src/cart.py\ntotal = 1\n"


def test_window_pieces_cut_at_line_starts() -> None:
    text = "aa\nbb\ncc\ndd\n"
    starts = [0, 3, 6, 9]  # one token per line
    assert window_pieces(text, starts, 4) == [(0, len(text))]
    assert window_pieces(text, starts, 2) == [(0, 6), (6, 12)]
    assert window_pieces(text, starts, 3) == [(0, 9), (9, 12)]
    long_line = "x" * 10 + "\nyy\n"  # one token per character: a line longer than the budget is cut inside
    assert window_pieces(long_line, list(range(len(long_line))), 4) == [(0, 4), (4, 8), (8, 11), (11, 14)]


@settings(max_examples=100, deadline=None)
@given(text=DOCUMENTS.filter(bool), budget=st.integers(1, 12))
def test_window_pieces_cover_the_text_within_the_budget(encoder: FimEncoder, text: str, budget: int) -> None:
    [(_, starts)] = encoder.encode_with_offsets([text])
    spans = window_pieces(text, starts, budget)
    assert [a for a, _ in spans[1:]] == [b for _, b in spans[:-1]] and spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a < b for a, b in spans)
    for a, b in spans:  # over budget only where one character is several (byte-level) tokens
        inside = [s for s in starts if a <= s < b]
        assert len(inside) <= budget or len(set(inside)) == 1


LONG_MODULE = "".join(f"def f{i}(x):\n    return x * {i} + {i}\n\n\n" for i in range(120))


@pytest.mark.parametrize("level", ["char", "token"])
def test_a_long_file_becomes_pieces_that_each_fit_a_row(encoder: FimEncoder, level: str) -> None:
    document = Document("acme/calc", "src/long.py", LONG_MODULE)
    assert len(encoder.encode([LONG_MODULE])[0]) > 4 * 128
    config = FimConfig(rate=0.5, spm_rate=0.5, level=level, span="line")
    pieces = apply_fim([document], encoder, config, seed=1, row_tokens=128)
    assert len(pieces) > 3 and {p.layout for p in pieces} == {None, "psm", "spm"}
    assert [p.piece for p in pieces] == sorted({p.piece for p in pieces}) and pieces[0].piece == 0
    texts = []
    for piece in pieces:
        if piece.layout is None:
            texts.append(encoder.decode(piece.input_ids))
            continue
        assert len(piece.input_ids) + 1 <= 128  # with end-of-text: one row holds prefix, suffix and middle
        text = encoder.decode(undo_fim(piece.input_ids, encoder))
        assert text.endswith("\n") or piece is pieces[-1]  # cut at line starts
        texts.append(text)
    assert "".join(texts) == LONG_MODULE  # nothing lost or repeated
    plain_runs = [p for p in pieces if p.layout is None]
    assert all(not (a.layout is None and b.layout is None) for a, b in itertools.pairwise(pieces))  # runs merged
    assert [p.end_of_text for p in pieces] == [p.layout is not None or p is pieces[-1] for p in pieces]
    assert plain_runs and apply_fim([document], encoder, config, seed=1, row_tokens=128) == pieces


def test_whole_files_with_scope_file_and_short_files_unchanged(encoder: FimEncoder) -> None:
    long = Document("acme/calc", "src/long.py", LONG_MODULE)
    config = FimConfig(rate=1.0, span="line", scope="file")
    [whole] = apply_fim([long], encoder, config, seed=1, row_tokens=128)
    assert whole.layout is not None and len(whole.input_ids) > 4 * 128
    window = FimConfig(rate=1.0, span="line")
    assert apply_fim([CALC_DOCUMENT], encoder, window, seed=5, row_tokens=128) == apply_fim(
        [CALC_DOCUMENT], encoder, window, seed=5
    )
