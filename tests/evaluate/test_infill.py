"""The FIM benchmark: holes where an editor asks, exact scores on hand-made holes with a deterministic generator,
the held-out split of the training run, and one run on the tiny model."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from personal_copilot.configs import read_run_record
from personal_copilot.evaluate import (
    FimEvalConfig,
    FimSettings,
    FimTask,
    cut_hole,
    edit_similarity,
    levenshtein,
    make_tasks,
    resolve_held_out,
    run_fim,
)
from personal_copilot.evaluate.infill import average, breakdown, generate_middles, score_holes

SOURCE = '''import os


def total(values):
    """Sum of the values."""
    result = 0
    for value in values:
        if value > 0:
            result += value
    return result


class Cache:
    def get(self, key):
        return self.items.get(key)
'''


class FakeGenerator:
    """Answers each hole from a table keyed by its prefix; records the stop strings it was asked to use."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.calls: list[tuple[int, tuple[str, ...]]] = []

    def infill(self, holes: Sequence[tuple[str, str]], *, max_new_tokens: int, stop: Sequence[str], advance=None):
        self.calls.append((len(holes), tuple(stop)))
        return [self.answers[prefix] for prefix, _ in holes]


def task(kind: str, prefix: str, middle: str, suffix: str, path: str = "a.py", repo: str = "r1") -> FimTask:
    return FimTask(repo, path, kind, prefix, middle, suffix)


KNOWN = [
    # (task, generated): exact match, edit similarity, parses
    (task("line", "def add(a, b):\n    ", "return a + b", "\n"), "return a + b\n"),  # 1, 1, True
    (task("rest_of_line", "def add(a, b):\n    return a", " + b", "\n"), " - b"),  # 0, 3/4, True
    (task("block", "", "if x:\n    y = 1", "\n", repo="r2"), "if x:\n    y = ("),  # 0, 14/15, False
    (task("line", "let a = ", "compute(1);", "\n", path="a.js", repo="r2"), ""),  # 0, 0, None (not Python)
    (task("line", "def broken(:\n    ", "return 1", "\n", path="b.py"), "return 1"),  # 1, 1, None (never parsed)
]


def test_scores_on_holes_with_known_answers_are_exact() -> None:
    tasks = [t for t, _ in KNOWN]
    generator = FakeGenerator({t.prefix: generated for t, generated in KNOWN})
    middles = generate_middles(tasks, generator, max_new_tokens=16)
    results = score_holes(tasks, middles)

    assert [r.exact_match for r in results] == [True, False, False, False, True]
    assert [r.edit_similarity for r in results] == pytest.approx([1.0, 0.75, 14 / 15, 0.0, 1.0])
    assert [r.parses for r in results] == [True, True, False, None, None]
    overall = average(results)
    assert (overall.holes, overall.python_holes) == (5, 3)
    assert overall.exact_match == pytest.approx(2 / 5)
    assert overall.edit_similarity == pytest.approx((1 + 0.75 + 14 / 15 + 0 + 1) / 5)
    assert overall.parse_rate == pytest.approx(2 / 3)
    by_kind = breakdown(results, lambda r: r.task.kind)
    assert list(by_kind) == ["block", "line", "rest_of_line"]
    assert (by_kind["line"].holes, by_kind["line"].exact_match, by_kind["line"].parse_rate) == (3, 2 / 3, 1.0)
    assert by_kind["block"].edit_similarity == pytest.approx(14 / 15)
    by_repository = breakdown(results, lambda r: r.task.repo_id)
    assert by_repository["r2"].exact_match == 0.0 and by_repository["r2"].parse_rate == 0.0
    assert by_repository["r1"].exact_match == pytest.approx(2 / 3)
    # single-line holes stop at the end of the line (as an editor does); blocks do not
    assert sorted(generator.calls) == [(1, ()), (4, ("\n",))]


def test_edit_similarity_and_levenshtein_by_hand() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == levenshtein("abc", "") == 3
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("return a - b", "return a + b") == pytest.approx(11 / 12)


def dynamic_programming_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


@given(st.text(alphabet="ab \n(é", max_size=90), st.text(alphabet="ab \n(é", max_size=90))
def test_bit_parallel_levenshtein_equals_the_textbook_one(a: str, b: str) -> None:
    assert levenshtein(a, b) == dynamic_programming_distance(a, b)


@pytest.mark.parametrize("seed", range(20))
def test_holes_are_where_an_editor_asks(seed: int) -> None:
    rng = random.Random(seed)
    for kind in ("line", "rest_of_line", "block"):
        start, end = cut_hole(SOURCE, kind, rng)
        prefix, middle, suffix = SOURCE[:start], SOURCE[start:end], SOURCE[end:]
        line_start = prefix.rfind("\n") + 1
        assert middle.strip() and suffix.startswith("\n") and not middle.endswith((" ", "\n"))
        if kind == "line":  # the whole code of a line, after its indentation
            assert "\n" not in middle and not prefix[line_start:].strip() and len(middle) >= 3
        elif kind == "rest_of_line":  # from a cursor in the code to the end of the line
            assert "\n" not in middle and prefix[line_start:].strip()
        else:  # a line that opens a block, and the block
            rest = middle.split("\n")[1:]
            indent = len(prefix) - line_start
            assert rest and not prefix[line_start:].strip()
            assert all(len(line) - len(line.lstrip()) > indent for line in rest if line.strip())


def test_files_without_a_place_for_a_kind_have_none() -> None:
    assert cut_hole("x = 1\ny = 2\n", "block", random.Random(0)) is None
    assert cut_hole("\n  \n)\n", "line", random.Random(0)) is None


def test_tasks_come_from_held_out_files_spread_over_repositories_and_kinds(collected: Path) -> None:
    held_out = resolve_held_out(str(collected), None, eval_fraction=0.5, seed=0)
    assert held_out.split.by == "file" and held_out.source.startswith("split here (by file within each repository")
    tasks, _ = make_tasks(held_out, 12, ["line", "rest_of_line", "block"], seed=0)
    again, _ = make_tasks(held_out, 12, ["line", "rest_of_line", "block"], seed=0)

    assert tasks == again and len(tasks) == 12
    assert {t.repo_id for t in tasks} == {"alpha", "beta", "gamma", "delta"}  # every repository is evaluated
    assert all(held_out.split.side(t.repo_id, t.file_path) == "eval" for t in tasks)
    assert Counter(t.kind for t in tasks) == {"line": 4, "rest_of_line": 4, "block": 4}
    documents = {(d.repo_id, d.file_path): d.content for d in held_out.documents()}
    for t in tasks:
        assert t.prefix + t.middle + t.suffix == documents[(t.repo_id, t.file_path)]
    other, _ = make_tasks(held_out, 12, ["line", "rest_of_line", "block"], seed=1)
    assert other != tasks


def test_a_runs_held_out_split_is_the_one_it_trained_without(lora_run: Path, collected: Path) -> None:
    record = read_run_record(lora_run)
    held_out = resolve_held_out(None, record, eval_fraction=0.5, seed=7)  # the run's split wins
    (trained,) = record.data_splits
    assert held_out.data == Path(trained["data"]) == collected
    assert held_out.split.by == trained["split_by"] == "file"
    assert held_out.split.eval_files == tuple(map(tuple, trained["eval_files"]))
    assert held_out.source.startswith("held out by the training run (by file within each repository")
    assert {(d.repo_id, d.file_path) for d in held_out.documents()} == set(held_out.split.eval_files)
    assert {d.repo_id for d in held_out.documents()} == {"alpha", "beta", "gamma", "delta"}


def test_without_data_or_run_the_error_says_what_to_give() -> None:
    from personal_copilot.errors import PcopilotError

    with pytest.raises(PcopilotError, match="--data is needed"):
        resolve_held_out(None, None, eval_fraction=0.1, seed=0)


def test_fim_on_the_tiny_model_writes_holes_and_per_kind_and_repository_scores(lora_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "fim"
    config = FimEvalConfig(
        model=str(lora_run), fim=FimSettings(num_examples=9, max_new_tokens=4), precision="fp32", output=out
    )
    report = run_fim(config)

    holes = [json.loads(line) for line in (out / "holes.jsonl").read_text().splitlines()]
    assert len(holes) == report.overall.holes == 9
    assert set(holes[0]) == {
        "repo_id", "file_path", "line", "kind", "before", "middle", "after", "generated", "exact_match",
        "edit_similarity", "parses",
    }  # fmt: skip
    eval_files = read_run_record(lora_run).data_splits[0]["eval_files"]
    assert set(report.by_repository) == {repo for repo, _ in eval_files} == {"alpha", "beta", "gamma", "delta"}
    assert set(report.by_kind) == {"line", "rest_of_line", "block"}
    assert sum(s.holes for s in report.by_kind.values()) == 9
    single_line = [h for h in holes if h["kind"] != "block"]
    assert all("\n" not in h["generated"] for h in single_line)
    assert report.overall.exact_match == sum(h["exact_match"] for h in holes) / 9
    saved = yaml.safe_load((out / "pcopilot_config.yaml").read_text())
    assert saved["stage"] == "eval fim" and saved["details"]["model"]["adapter"] == str(lora_run)
