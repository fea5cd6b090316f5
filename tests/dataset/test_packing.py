"""Packing: rows of exactly seq_len, end-of-text between documents, position ids restarting at each document, labels
that never cross a document boundary, long documents cut across rows and nothing dropped."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from personal_copilot.dataset import IGNORE_INDEX, PackItem, pack_sequences, split_sequences

EOS, PAD = 0, 99


def test_packed_rows_by_hand() -> None:
    documents = [PackItem([11, 12, 13], "a"), PackItem([21, 22, 23, 24, 25, 26, 27, 28, 29], "b"), PackItem([31], "c")]
    rows = list(pack_sequences(documents, seq_len=6, eos_id=EOS, pad_id=PAD))
    assert [row.input_ids for row in rows] == [
        [11, 12, 13, EOS, 21, 22],
        [23, 24, 25, 26, 27, 28],
        [29, EOS, 31, EOS, PAD, PAD],
    ]
    assert [row.position_ids for row in rows] == [
        [0, 1, 2, 3, 0, 1],
        [0, 1, 2, 3, 4, 5],
        [0, 1, 0, 1, 0, 1],
    ]
    assert [row.labels for row in rows] == [
        [IGNORE_INDEX, 12, 13, EOS, IGNORE_INDEX, 22],
        [IGNORE_INDEX, 24, 25, 26, 27, 28],
        [IGNORE_INDEX, EOS, IGNORE_INDEX, EOS, IGNORE_INDEX, IGNORE_INDEX],
    ]
    assert [row.sources for row in rows] == [["a", "b"], ["b"], ["b", "c"]]
    assert [row.padding for row in rows] == [0, 0, 2]


def test_unpacked_rows_by_hand() -> None:
    rows = list(split_sequences([PackItem([1, 2, 3, 4, 5], "a"), PackItem([6], "b")], seq_len=4, eos_id=EOS))
    assert [row.input_ids for row in rows] == [[1, 2, 3, 4], [5, EOS], [6, EOS]]
    assert [row.position_ids for row in rows] == [[0, 1, 2, 3], [0, 1], [0, 1]]
    assert [row.sources for row in rows] == [["a"], ["a"], ["b"]]


LENGTHS = st.lists(st.integers(0, 40), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(lengths=LENGTHS, seq_len=st.integers(2, 32))
def test_packing_invariants(lengths: list[int], seq_len: int) -> None:
    documents = [PackItem([100 + k] * n, k) for k, n in enumerate(lengths)]
    rows = list(pack_sequences(documents, seq_len, EOS, PAD))
    assert all(len(row.input_ids) == len(row.labels) == len(row.position_ids) == seq_len for row in rows)
    assert all(row.padding == 0 for row in rows[:-1])
    tokens = [t for row in rows for t in row.input_ids[: seq_len - row.padding]]
    assert tokens == [t for d in documents for t in [*d.ids, EOS]]  # nothing dropped, order kept
    for row in rows:
        real = seq_len - row.padding
        for i in range(real):
            starts_document = i == 0 or row.input_ids[i - 1] == EOS
            assert (row.position_ids[i] == 0) == starts_document
            assert row.labels[i] == (IGNORE_INDEX if starts_document else row.input_ids[i])
        assert row.position_ids[real:] == list(range(row.padding))
        assert row.labels[real:] == [IGNORE_INDEX] * row.padding
        assert len(row.sources) == row.position_ids[:real].count(0)


@settings(max_examples=100, deadline=None)
@given(lengths=LENGTHS, seq_len=st.integers(2, 32))
def test_unpacked_rows_keep_every_token(lengths: list[int], seq_len: int) -> None:
    documents = [PackItem([100 + k] * n, k) for k, n in enumerate(lengths)]
    rows = list(split_sequences(documents, seq_len, EOS))
    assert all(0 < len(row.input_ids) <= seq_len and row.padding == 0 for row in rows)
    assert all(len(row.sources) == 1 and row.position_ids == list(range(len(row.input_ids))) for row in rows)
    assert [t for row in rows for t in row.input_ids] == [t for d in documents for t in [*d.ids, EOS]]


ITEMS = st.lists(st.tuples(st.integers(0, 40), st.booleans(), st.booleans()), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(items=ITEMS, seq_len=st.integers(2, 32), max_waiting=st.integers(0, 4))
def test_whole_sequences_are_never_cut(items: list[tuple[int, bool, bool]], seq_len: int, max_waiting: int) -> None:
    """A whole sequence that fits a row lands in one row, in one piece; the others keep their order and fill rows;
    no token is lost, and the end-of-text follows only the sequences that end a document."""
    sequences = [PackItem([100 + k] * n, k, end_of_text=ends, whole=whole) for k, (n, ends, whole) in enumerate(items)]
    rows = list(pack_sequences(sequences, seq_len, EOS, PAD, max_waiting=max_waiting))
    assert all(len(row.input_ids) == len(row.labels) == len(row.position_ids) == seq_len for row in rows)
    segments: dict[int, list[list[int]]] = {}
    for row in rows:
        real = seq_len - row.padding
        starts = [i for i in range(real) if row.position_ids[i] == 0]
        assert len(row.sources) == len(starts) and row.input_ids[real:] == [PAD] * row.padding
        for source, start, end in zip(row.sources, starts, [*starts[1:], real], strict=True):
            segments.setdefault(source, []).append(row.input_ids[start:end])
    for item in sequences:
        tokens = item.tokens(EOS)
        if not tokens:
            assert item.source not in segments
        elif item.whole and len(tokens) <= seq_len:
            assert segments[item.source] == [tokens]
        else:
            assert [t for part in segments[item.source] for t in part] == tokens
    cut = [s for row in rows for s in row.sources if not sequences[s].whole or len(sequences[s].tokens(EOS)) > seq_len]
    assert cut == sorted(cut)  # the cuttable ones in their order
