"""Scores of the fill-in-the-middle benchmark: per hole, whether the model's middle is the original one (exact
match), how close it is (edit similarity), and, for Python files that parse, whether the file still parses with it;
then the same averaged per hole kind and per repository.

Both texts are compared without trailing whitespace (a trailing newline before the suffix is not an error); leading
whitespace counts, since an editor inserts it. Edit similarity is 1 - Levenshtein distance / length of the longer
text (1 for two empty texts).
"""

from __future__ import annotations

import ast
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from personal_copilot.evaluate.generation import Advance, CodeGenerator
from personal_copilot.evaluate.holes import FimTask

SINGLE_LINE_STOPS = ("\n",)
"""Single-line holes end at the first newline, as an editor's single-line completion does."""


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions) by the bit-parallel algorithm of Myers / Hyyrö: one pass
    over the longer text, the shorter one held in the bits of a Python integer."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    positions: dict[str, int] = defaultdict(int)
    for i, char in enumerate(b):
        positions[char] |= 1 << i
    mask, last = (1 << len(b)) - 1, 1 << (len(b) - 1)
    plus, minus, distance = mask, 0, len(b)
    for char in a:
        equal = positions.get(char, 0)
        vertical = equal | minus
        horizontal = (((equal & plus) + plus) ^ plus) | equal
        up = minus | ~(horizontal | plus)
        down = plus & horizontal
        if up & last:
            distance += 1
        elif down & last:
            distance -= 1
        up = (up << 1) | 1
        down <<= 1
        plus = (down | ~(vertical | up)) & mask
        minus = up & vertical & mask
    return distance


def edit_similarity(generated: str, reference: str) -> float:
    """1 - levenshtein / length of the longer text; 1.0 for two empty texts."""
    longest = max(len(generated), len(reference))
    return 1.0 if longest == 0 else 1.0 - levenshtein(generated, reference) / longest


def python_parses(source: str) -> bool:
    """Whether `source` is valid Python (parsed, never run)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes is not our business
        try:
            ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
    return True


@dataclass(frozen=True)
class HoleResult:
    """A hole, the middle the model wrote, and its scores (a line of holes.jsonl)."""

    task: FimTask
    generated: str
    exact_match: bool
    edit_similarity: float
    parses: bool | None
    """For a Python file that parses as it is: whether it still parses with the generated middle; else None."""


@dataclass(frozen=True)
class FimScores:
    """Averages over a set of holes."""

    holes: int
    exact_match: float
    edit_similarity: float
    parse_rate: float | None
    """Share of the Python holes (in files that parse) whose file still parses; None without such holes."""
    python_holes: int


def score_hole(task: FimTask, generated: str, original_parses: bool) -> HoleResult:
    """Scores one middle; `original_parses` says whether the file parses with its own middle."""
    candidate, reference = generated.rstrip(), task.middle.rstrip()
    parses = python_parses(task.prefix + generated + task.suffix) if task.is_python and original_parses else None
    return HoleResult(task, generated, candidate == reference, edit_similarity(candidate, reference), parses)


def generate_middles(
    tasks: Sequence[FimTask], generator: CodeGenerator, max_new_tokens: int, advance: Advance | None = None
) -> list[str]:
    """The generator's middle for each task; single-line kinds stop at the end of the line."""
    middles = [""] * len(tasks)
    for single_line in (True, False):
        indices = [i for i, t in enumerate(tasks) if (t.kind != "block") == single_line]
        if not indices:
            continue
        stop = SINGLE_LINE_STOPS if single_line else ()
        holes = [(tasks[i].prefix, tasks[i].suffix) for i in indices]
        filled = generator.infill(holes, max_new_tokens=max_new_tokens, stop=stop, advance=advance)
        for i, middle in zip(indices, filled, strict=True):
            middles[i] = middle
    return middles


def score_holes(tasks: Sequence[FimTask], middles: Sequence[str]) -> list[HoleResult]:
    """Scores each task's generated middle (each file is parsed once for the `parses` baseline)."""
    original: dict[tuple[str, str], bool] = {}
    results = []
    for task, middle in zip(tasks, middles, strict=True):
        key = (task.repo_id, task.file_path)
        if task.is_python and key not in original:
            original[key] = python_parses(task.prefix + task.middle + task.suffix)
        results.append(score_hole(task, middle, original.get(key, False)))
    return results


def average(results: Sequence[HoleResult]) -> FimScores:
    """The averages of `results`."""
    parsed = [r.parses for r in results if r.parses is not None]
    count = max(len(results), 1)
    return FimScores(
        holes=len(results),
        exact_match=sum(r.exact_match for r in results) / count,
        edit_similarity=sum(r.edit_similarity for r in results) / count,
        parse_rate=sum(parsed) / len(parsed) if parsed else None,
        python_holes=len(parsed),
    )


def breakdown(results: Iterable[HoleResult], key: Callable[[HoleResult], str]) -> dict[str, FimScores]:
    """Averages per group (`key` of each result), groups in sorted order."""
    groups: dict[str, list[HoleResult]] = defaultdict(list)
    for result in results:
        groups[key(result)].append(result)
    return {name: average(groups[name]) for name in sorted(groups)}
