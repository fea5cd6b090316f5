"""`pcopilot dataset` (look at the training examples) and `pcopilot tokenizer` (train a tokenizer for a family).

    pcopilot tokenizer --data data/ --output tok/ --vocab_size 8192 --family starcoder
    pcopilot dataset --data data/ --tokenizer tok/ --output examples.jsonl --num_examples 20 --fim.rate 1

Python: `run_dataset(DatasetConfig(tokenizer="tok", data=Path("data")))`, `run_tokenizer(TokenizerConfig(...))`.
`pcopilot dataset` writes `NAME.jsonl`, and beside it `NAME.pcopilot_config.yaml` and `NAME.report.json` (not the
folder's `pcopilot_config.yaml` / `report.json`, which may belong to another stage's output, e.g. the dataset's).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from itertools import islice

from personal_copilot.configs import CONFIG_FILE, REPORT_FILE, write_report, write_run_config
from personal_copilot.console import progress_bar
from personal_copilot.dataset.config import DatasetConfig, TokenizerConfig
from personal_copilot.dataset.encoder import FimEncoder
from personal_copilot.dataset.families import get_family
from personal_copilot.dataset.reader import iter_documents, list_shards, read_document_keys, read_document_sizes
from personal_copilot.dataset.report import DatasetReport, TokenizerReport
from personal_copilot.dataset.splits import split_documents
from personal_copilot.dataset.stream import ExampleStream
from personal_copilot.dataset.tokenizer import train_tokenizer
from personal_copilot.errors import PcopilotError
from personal_copilot.modeling import load_tokenizer

_COMPRESSION_SAMPLE = 200


def run_dataset(config: DatasetConfig) -> DatasetReport:
    """Writes `config.num_examples` training rows of one side of the split as JSON lines and returns the report."""
    start = time.perf_counter()
    shards = list_shards(config.data)
    tokenizer = load_tokenizer(config.tokenizer)
    encoder = FimEncoder(tokenizer, config.family, require_fim=config.fim.rate > 0, repo_context=config.repo_context)
    split = split_documents(read_document_sizes(shards), config.eval_fraction, config.seed, config.split_by)
    if (split.train_documents if config.split == "train" else split.eval_documents) == 0:
        raise PcopilotError(f"the {config.split} side of the split of {config.data} has no documents")
    stream = ExampleStream(
        shards,
        encoder,
        config.fim,
        seq_len=config.seq_len,
        packing=config.packing,
        seed=config.seed,
        split=split,
        side=config.split,
        repo_context=config.repo_context,
    )
    rows = islice(stream, config.num_examples) if config.num_examples else stream
    pieces: dict[tuple[str, str, int], str | None] = {}
    examples = tokens = padding = 0
    output = config.output
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with progress_bar("writing examples", config.num_examples or None) as advance, partial.open("w") as file:
        for row in rows:
            sources = [
                {"repo_id": r, "file_path": p, "piece": piece, "fim": layout} for r, p, layout, piece in row.sources
            ]
            line = {"text": encoder.decode(row.input_ids), "input_ids": row.input_ids, "sources": sources}
            file.write(json.dumps(line, ensure_ascii=False) + "\n")
            pieces.update(((r, p, piece), layout) for r, p, layout, piece in row.sources)
            examples += 1
            tokens += len(row.input_ids) - row.padding
            padding += row.padding
            advance(1)
    os.replace(partial, output)
    layouts = list(pieces.values())
    report = DatasetReport(
        output=str(output),
        tokenizer=config.tokenizer,
        family=encoder.family.name if encoder.family else None,
        split=split,
        side=config.split,
        examples=examples,
        documents=len({(r, p) for r, p, _ in pieces}),
        fim_psm=layouts.count("psm"),
        fim_spm=layouts.count("spm"),
        plain=layouts.count(None),
        tokens=tokens,
        padding_tokens=padding,
        seconds=round(time.perf_counter() - start, 3),
    )
    write_run_config(output.parent, "dataset", config, filename=f"{output.stem}.{CONFIG_FILE}")
    write_report(output.parent, report, filename=f"{output.stem}.{REPORT_FILE}")
    return report


def run_tokenizer(config: TokenizerConfig) -> TokenizerReport:
    """Trains and saves the tokenizer in `config.output` and returns the report (also written as `report.json`)."""
    start = time.perf_counter()
    shards = list_shards(config.data)
    family = get_family(config.family)
    count = len(read_document_keys(shards))
    seen: Counter[str] = Counter()
    sample: list[str] = []
    with progress_bar("training tokenizer", count) as advance:

        def texts() -> Iterator[str]:
            for batch in iter_documents(shards):
                for document in batch:
                    seen["documents"] += 1
                    seen["bytes"] += len(document.content.encode())
                    if len(sample) < _COMPRESSION_SAMPLE:
                        sample.append(document.content)
                    advance(1)
                    yield document.content

        trained = train_tokenizer(texts(), family, config.vocab_size, min_frequency=config.min_frequency, length=count)
    trained.save_pretrained(config.output)
    tokenizer = load_tokenizer(str(config.output))
    encoded = FimEncoder(tokenizer, family).encode(sample)  # also checks that every sentinel is a single id
    report = TokenizerReport(
        output=str(config.output),
        family=family.name,
        vocab_size=len(tokenizer),
        documents=seen["documents"],
        megabytes=round(seen["bytes"] / 1e6, 3),
        special_tokens={token: tokenizer.convert_tokens_to_ids(token) for token in family.special_tokens},
        chars_per_token=round(sum(map(len, sample)) / max(1, sum(map(len, encoded))), 3),
        seconds=round(time.perf_counter() - start, 3),
    )
    write_run_config(config.output, "tokenizer", config)
    write_report(config.output, report)
    return report
