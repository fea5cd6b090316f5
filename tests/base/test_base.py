"""The base stage: license policy, corpus split, a whole `pcopilot base build --recipe test`, and the shipped base."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from personal_copilot.base.build import Corpus, pretrain_config
from personal_copilot.base.corpus import held_out_names, installed_packages, is_permissive, stdlib_module
from personal_copilot.base.measure import compressor_bits_per_byte
from personal_copilot.base.recipe import RECIPES
from personal_copilot.base.shipped import shipped_dir
from personal_copilot.cli import main


@pytest.mark.parametrize(
    ("license_text", "usable"),
    [
        ("MIT", True),
        ("BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0", True),
        ("Apache-2.0 AND Apache-2.0 WITH LLVM-exception AND BSD-2-Clause", True),
        ("Apache-2.0 OR BSD-2-Clause", True),
        ("Python Software Foundation License", True),
        ("MPL-2.0 AND MIT", False),
        ("GPL-3.0-or-later", False),
        ("LGPLv3", False),
        ("Commercial", False),
        ("", False),
    ],
)
def test_only_permissive_licenses_are_used(license_text: str, usable: bool) -> None:
    assert is_permissive(license_text)[0] is usable


def test_installed_packages_exclude_our_own_code_and_copyleft() -> None:
    packages = {p.name.lower(): p for p in installed_packages()}
    assert not packages["personal-copilot"].permissive  # the quickstart's "own code" must be new to the base
    assert packages["rich"].permissive and packages["rich"].folders
    assert all(not p.permissive for p in packages.values() if "MPL" in p.license)


def test_held_out_choice_is_deterministic_and_order_free() -> None:
    names = [f"module{i}" for i in range(50)]
    first = held_out_names(names, 0.1, seed=0)
    assert first == held_out_names(list(reversed(names)), 0.1, seed=0)
    assert len(first) == 5 and first != held_out_names(names, 0.1, seed=1)
    assert stdlib_module("stdlib", "json/decoder.py") == "json" and stdlib_module("stdlib", "csv.py") == "csv"
    assert stdlib_module("stdlib:email", "mime/text.py") == "email"


def test_compressors_are_measured_on_the_same_bytes() -> None:
    texts = ["def f(x):\n    return x + 1\n" * 50, "import os\n" * 80]
    gzip_bits, xz_bits, whole_bits = compressor_bits_per_byte(texts)
    assert 0 < whole_bits < xz_bits < 8 and 0 < gzip_bits < 8  # repetitive text compresses; one stream does better


@pytest.fixture
def test_build(test_base_build: Path) -> Path:
    return test_base_build


@pytest.mark.slow
def test_build_holds_out_modules_trains_measures_and_writes_a_card(test_build: Path) -> None:
    corpus = json.loads((test_build / "corpus" / "corpus.json").read_text())
    held = set(corpus["heldout_stdlib_modules"])
    assert held and corpus["splits"]["heldout_stdlib"]["files"] > 0
    train = pq.read_table(test_build / "corpus" / "train.parquet").to_pylist()
    assert train and not {stdlib_module(r["repo_id"], r["file_path"]) for r in train} & held
    assert all(r["file_path"].endswith(".py") for r in train)

    record = json.loads((test_build / "model" / "base.json").read_text())
    compression = record["measurements"]["compression"]["standard library"]
    assert compression["bytes"] > 0 and 0 < compression["model"] < 16 and 0 < compression["xz"] < 8
    assert set(record["measurements"]["fim"]) == {"all", "line", "rest_of_line", "block"}
    by_layout = record["measurements"]["fim_by_layout"]
    assert set(by_layout) == {"psm", "spm"} and record["fim_layout"] in by_layout  # measured in both, the better kept
    assert record["measurements"]["fim"]["all"] == by_layout[record["fim_layout"]]
    assert record["training"]["steps"] == 6 and record["training"]["tokens_seen"] > 0
    assert record["training"]["legs"] == [3, 6]  # trained to step 3, then resumed with the schedule stretched to 6
    legs = [json.loads((test_build / "run" / "legs" / f"{n}.json").read_text()) for n in (3, 6)]
    assert [leg["steps"] for leg in legs] == [3, 6] and legs[1]["resumed_from"] == "checkpoint-3"
    card = (test_build / "model" / "README.md").read_text()
    assert "resumed at step 3 with the schedule stretched to 6" in card
    assert "FIM examples were whole files up to step 3 and row-sized pieces of files after it" in card
    assert f"prompt layout it does best in, {record['fim_layout'].upper()}" in card
    copying = record["measurements"]["copying"]
    reads = f"{copying['first_read']:.2f} nats/token on the first read, {copying['second_read']:.2f} on the second"
    assert reads in card
    trained = yaml.safe_load((test_build / "run" / "pcopilot_config.yaml").read_text())["config"]
    assert trained["fim"]["scope"] == "window" and trained["max_steps"] == 6  # the last leg's settings
    first_leg = pretrain_config(RECIPES["test"], Corpus(test_build / "corpus", corpus), test_build / "run", 3)
    assert first_leg.fim.scope == "file" and first_leg.max_steps == 3
    assert record["sha256"] in card and "| standard library |" in card and "## Packages learned from" in card
    for name in ("model.safetensors", "config.json", "tokenizer.json", "loss.png"):
        assert (test_build / "model" / name).is_file()


@pytest.mark.slow
def test_build_again_reuses_every_step(test_build: Path) -> None:
    before = (test_build / "corpus" / "train.parquet").stat().st_mtime_ns
    checkpoints = sorted(p.name for p in (test_build / "run").glob("checkpoint-*"))
    assert main(["base", "build", "--recipe", "test", "--output", str(test_build), "--humaneval_problems", "0"]) == 0
    assert (test_build / "corpus" / "train.parquet").stat().st_mtime_ns == before
    assert sorted(p.name for p in (test_build / "run").glob("checkpoint-*")) == checkpoints


@pytest.mark.slow
def test_show_checks_the_weights_against_the_card(test_build: Path, tmp_path: Path, capsys) -> None:
    model = tmp_path / "model"
    shutil.copytree(test_build / "model", model)
    assert main(["base", "show", "--model", str(model)]) == 0
    assert "matches the card" in capsys.readouterr().out
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    assert main(["base", "show", "--model", str(model)]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_the_shipped_base_is_complete_and_its_weights_match_the_card(capsys) -> None:
    model = shipped_dir()
    record = json.loads((model / "base.json").read_text())
    assert record["recipe_name"] == "default"
    assert main(["base", "show"]) == 0
    copying = record["measurements"]["copying"]
    assert f"in-context copying: {copying['first_read']:.2f} nats/token" in capsys.readouterr().out
    assert (model / "model.safetensors").stat().st_size < 40_000_000
    standard_library = record["measurements"]["compression"]["standard library"]
    assert standard_library["model"] < standard_library["xz"]  # it compresses held-out Python better than xz
    assert "In-context copying" in (model / "README.md").read_text()  # what it cannot do yet is on the card


def test_model_nats_scores_each_token_once_with_half_a_window_of_context(tiny_models: dict[str, Path]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from personal_copilot.base.measure import model_nats

    model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    texts = ["def add(a, b):\n    return a + b\n" * 12, "x = 1\n"]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    assert lengths[0] > 64  # the first text spans several 32-token windows

    def full_context_nats(text: str, window: int) -> float:
        ids = torch.tensor([[tokenizer.eos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]])
        with torch.inference_mode():
            logits = model(input_ids=ids[:, :-1]).logits.float()
        losses = torch.nn.functional.cross_entropy(logits[0], ids[0, 1:], reduction="none")
        return losses[:window].sum().item()

    tokens = model_nats(model, tokenizer, texts, seq_len=32)[1]
    assert tokens == sum(lengths)  # every token of every file is predicted once
    whole, whole_tokens = model_nats(model, tokenizer, texts, seq_len=512)  # one window per file
    assert whole_tokens == tokens
    assert whole == pytest.approx(full_context_nats(texts[0], 512) + full_context_nats(texts[1], 512), rel=1e-4)
    first_window = model_nats(model, tokenizer, [tokenizer.decode(tokenizer(texts[0])["input_ids"][:32])], 32)[0]
    assert first_window == pytest.approx(full_context_nats(texts[0], 32), rel=1e-4)  # the first window starts the file


def test_copying_tells_a_model_that_copies_from_one_that_does_not(tiny_models: dict[str, Path]) -> None:
    import math
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from personal_copilot.base.measure import measure_copying

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    vocabulary = len(tokenizer)

    class Induction(torch.nn.Module):
        """Predicts the token that followed the last earlier occurrence of the current one (uniform when none)."""

        def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
            logits = torch.zeros(*input_ids.shape, vocabulary)
            for row, ids in enumerate(input_ids.tolist()):
                seen: dict[int, int] = {}
                for position, token in enumerate(ids):
                    if token in seen:
                        logits[row, position, ids[seen[token] + 1]] = 12.0
                    seen[token] = position
            return SimpleNamespace(logits=logits)

    copier = measure_copying(Induction(), tokenizer, sequences=4, tokens=20)
    assert copier.first_read == pytest.approx(math.log(vocabulary), rel=0.1)  # a token may repeat by chance
    assert copier.copies and copier.second_read < copier.first_read / 5
    untrained = measure_copying(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]).eval(), tokenizer)
    assert not untrained.copies and untrained.second_read == pytest.approx(untrained.first_read, rel=0.1)
