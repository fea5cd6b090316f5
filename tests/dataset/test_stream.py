"""The streaming builder: the same FIM examples whatever the worker count, shard order or batch size; the split
respected; rows exactly seq_len with nothing dropped; the torch view through a DataLoader with workers; and packed
rows keep attention within documents in a real (tiny) model."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from personal_copilot.dataset import (
    ExampleStream,
    FimConfig,
    FimEncoder,
    PackItem,
    list_shards,
    pack_sequences,
    read_document_keys,
    read_document_sizes,
    split_documents,
)

FIM = FimConfig(rate=0.5, spm_rate=0.5, level="char", span="line")


def _stream(collected: Path, encoder: FimEncoder, **options) -> ExampleStream:
    options = {"seq_len": 128, "seed": 3, **options}
    fim = options.pop("fim", FIM)
    return ExampleStream(options.pop("shards", list_shards(collected)), encoder, fim, **options)


def _by_identity(documents) -> dict:
    return {(d.repo_id, d.file_path, d.piece): (d.layout, d.input_ids) for d in documents}


def test_examples_do_not_depend_on_workers_shard_order_or_batches(collected: Path, encoder: FimEncoder) -> None:
    shards = list_shards(collected)
    assert len(shards) > 2
    reference = _by_identity(_stream(collected, encoder).documents())
    assert len({(repo, path) for repo, path, _ in reference}) == len(read_document_keys(shards)) < len(reference)
    assert Counter(layout for layout, _ in reference.values()).keys() == {None, "psm", "spm"}
    for workers in (2, 3):
        stream = _stream(collected, encoder, batch_documents=5)
        parts = [_by_identity(stream.documents(k, workers)) for k in range(workers)]
        assert sum(len(p) for p in parts) == len(reference)  # no document in two workers
        assert {key: value for p in parts for key, value in p.items()} == reference
    reversed_shards = _stream(collected, encoder, shards=shards[::-1], batch_documents=7)
    assert _by_identity(reversed_shards.documents()) == reference


def test_a_new_epoch_draws_new_examples(collected: Path, encoder: FimEncoder) -> None:
    stream = _stream(collected, encoder)
    first = _by_identity(stream.documents())
    stream.set_epoch(1)
    second = _by_identity(stream.documents())
    assert {key[:2] for key in first} == {key[:2] for key in second} and first != second


def test_shuffle_buffer_reorders_deterministically(collected: Path, encoder: FimEncoder) -> None:
    in_order = [(d.repo_id, d.file_path) for d in _stream(collected, encoder).documents()]
    shuffled = [(d.repo_id, d.file_path) for d in _stream(collected, encoder, shuffle_buffer=8).documents()]
    again = [(d.repo_id, d.file_path) for d in _stream(collected, encoder, shuffle_buffer=8).documents()]
    assert shuffled == again != in_order
    assert sorted(shuffled) == sorted(in_order)


def test_whole_file_rows_are_exactly_seq_len_and_keep_every_token(collected: Path, encoder: FimEncoder) -> None:
    stream = _stream(collected, encoder, seq_len=96, fim=replace(FIM, scope="file"))
    documents = list(stream.documents())
    rows = list(stream.rows())
    assert all(len(row.input_ids) == len(row.position_ids) == len(row.labels) == 96 for row in rows)
    assert all(row.padding == 0 for row in rows[:-1]) and rows[-1].padding < 96
    real = Counter(t for row in rows for t in row.input_ids[: 96 - row.padding])
    assert real == Counter(t for d in documents for t in [*d.input_ids, encoder.eos_id])  # short FIM ones kept whole
    long = max(documents, key=lambda d: len(d.input_ids))
    assert len(long.input_ids) > 3 * 96  # the long module is cut across rows
    sources = [s for row in rows for s in row.sources]
    assert sources.count((long.repo_id, long.file_path, long.layout, 0)) >= 4


def test_every_fim_example_is_whole_in_one_row(collected: Path, encoder: FimEncoder) -> None:
    """Window scope: a long file's pieces each fit a row, and the packer never cuts a FIM example, so its middle is
    trained with its prefix and suffix in view; plain text still fills the rows, and no token is lost."""
    stream = _stream(collected, encoder, seq_len=96)
    documents = list(stream.documents())
    rows = list(stream.rows())
    assert all(len(row.input_ids) == 96 for row in rows)
    segments = Counter()
    for row in rows:
        starts = [i for i, position in enumerate(row.position_ids) if position == 0]
        for (start, end), source in zip(itertools.pairwise([*starts, 96]), row.sources, strict=False):
            segments[source] += 1
            if source[2] is not None:
                example = row.input_ids[start:end]
                assert example[0] == encoder.prefix_id and example[-1] == encoder.eos_id
    fim = [d for d in documents if d.layout is not None]
    assert len(fim) > 20 and all(segments[d.repo_id, d.file_path, d.layout, d.piece] == 1 for d in fim)
    real = Counter(t for row in rows for t in row.input_ids[: 96 - row.padding])
    assert real == Counter(t for d in documents for t in [*d.input_ids, *[encoder.eos_id] * d.end_of_text])
    assert sum(row.padding for row in rows) < 96 * 3


def test_unpacked_rows_are_one_document(collected: Path, encoder: FimEncoder) -> None:
    stream = _stream(collected, encoder, seq_len=4096, packing=False)
    documents = list(stream.documents())
    rows = list(stream.rows())
    assert [row.input_ids for row in rows] == [[*d.input_ids, encoder.eos_id] for d in documents]


def test_the_stream_reads_one_side_of_the_split(collected: Path, encoder: FimEncoder) -> None:
    shards = list_shards(collected)
    split = split_documents(read_document_sizes(shards), 0.25, seed=0, by="repository")
    train = {d.repo_id for d in _stream(collected, encoder, split=split).documents()}
    held_out = {d.repo_id for d in _stream(collected, encoder, split=split, side="eval").documents()}
    assert held_out == set(split.eval_repos) and len(held_out) == 1
    assert train.isdisjoint(held_out) and len(train) == 3


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_documents_do_not_attend_to_each_other(attention: str) -> None:
    """A document's logits in a packed row equal its logits alone: transformers turns position ids that restart into
    a per-document mask (no attention_mask, no cache). With plain positions the second document sees the first."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attn_implementation=attention,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    first, second = [5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16]
    [row] = pack_sequences([PackItem(first, "a"), PackItem(second, "b")], seq_len=14, eos_id=1, pad_id=0)
    ids = torch.tensor([row.input_ids])
    with torch.no_grad():
        packed = model(ids, position_ids=torch.tensor([row.position_ids]), use_cache=False).logits[0]
        alone = model(torch.tensor([[*second, 1]]), use_cache=False).logits[0]
        crossing = model(ids, use_cache=False).logits[0]
    at = slice(len(first) + 1, len(first) + 1 + len(second) + 1)
    torch.testing.assert_close(packed[at], alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(crossing[at], alone, atol=1e-3)
