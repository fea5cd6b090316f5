"""Fill-in-the-middle holes cut from held-out files where an editor asks for a completion:

- `line`: a whole line after its indentation (the cursor on a fresh, indented line);
- `rest_of_line`: from a cursor inside a line's code to the end of that line;
- `block`: a line that opens an indented block, and the block (the cursor where a `def`, `if` or `for` starts).

Holes are spread over repositories (round robin over the held-out repositories, each one's files in an order
shuffled by the seed) and over kinds (rotating); each position is drawn by a generator seeded with (seed, round,
repository, file, kind). The same dataset and seed give the same holes whichever model is evaluated.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from personal_copilot.evaluate.config import HoleKind
from personal_copilot.evaluate.heldout import HeldOut

MIN_HOLE_CHARS = 3
"""A line is a candidate when its code (without indentation) has at least this many characters: not `)` or `}`."""
MAX_BLOCK_LINES = 16
"""Longest block hole, its first line included."""
_ATTEMPTS_PER_HOLE = 3
"""Draws tried per hole asked for, when small datasets give the same hole twice."""


@dataclass(frozen=True)
class FimTask:
    """One hole: the model sees `prefix` and `suffix` and should write `middle`."""

    repo_id: str
    file_path: str
    kind: HoleKind
    prefix: str
    middle: str
    suffix: str

    @property
    def is_python(self) -> bool:
        return self.file_path.endswith((".py", ".pyi"))


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    code: int
    """Offset of the first character after the indentation."""
    end: int
    """Offset of the newline (or the end of the text)."""

    def indent(self) -> int:
        return self.code - self.start


def _lines(text: str) -> list[_Line]:
    lines, start = [], 0
    for line in text.split("\n"):
        end = start + len(line)
        lines.append(_Line(start, start + len(line) - len(line.lstrip(" \t")), end))
        start = end + 1
    return lines


def _is_candidate(text: str, line: _Line) -> bool:
    return len(text[line.code : line.end].rstrip()) >= MIN_HOLE_CHARS


def _block_end(text: str, lines: list[_Line], i: int) -> int | None:
    """Index of the last line of the indented block opened by line `i`; None when no deeper line follows it."""
    indent, last = lines[i].indent(), None
    for j in range(i + 1, len(lines)):
        if not text[lines[j].code : lines[j].end].strip():
            continue
        if lines[j].indent() <= indent:
            break
        last = j
    return last


def cut_hole(text: str, kind: HoleKind, rng: random.Random) -> tuple[int, int] | None:
    """Character offsets (start, end) of a hole of `kind` in `text`; None when the text has no such place."""
    lines = _lines(text)
    candidates = [i for i, line in enumerate(lines) if _is_candidate(text, line)]
    if kind == "block":
        blocks = [(i, end) for i in candidates if (end := _block_end(text, lines, i)) is not None]
        blocks = [(i, end) for i, end in blocks if end - i + 1 <= MAX_BLOCK_LINES]
        if not blocks:
            return None
        i, end = rng.choice(blocks)
        return lines[i].code, lines[end].start + len(text[lines[end].start : lines[end].end].rstrip())
    if not candidates:
        return None
    line = lines[rng.choice(candidates)]
    code_end = line.code + len(text[line.code : line.end].rstrip())
    if kind == "line":
        return line.code, code_end
    return rng.randint(line.code + 1, code_end - 1), code_end


def _file_order(keys: Sequence[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    """Held-out files interleaved across repositories: the first file of each repository, then the second, …"""
    by_repository: dict[str, list[str]] = defaultdict(list)
    for repo, path in keys:
        by_repository[repo].append(path)
    queues = []
    for repo in sorted(by_repository):
        paths = sorted(by_repository[repo])
        random.Random(f"{seed}/{repo}").shuffle(paths)
        queues.append([(repo, path) for path in paths])
    longest = max(map(len, queues), default=0)
    return [queue[k] for k in range(longest) for queue in queues if k < len(queue)]


def make_tasks(
    held_out: HeldOut, num_examples: int, kinds: Sequence[HoleKind], seed: int
) -> tuple[list[FimTask], Counter[str]]:
    """Up to `num_examples` distinct holes from the held-out files; and the draws skipped, by reason. A file without
    a place for the kind due gets the next kind that fits."""
    order = _file_order(held_out.keys(), seed)
    attempts = num_examples * _ATTEMPTS_PER_HOLE
    needed = set(order[:attempts])
    contents = {
        (d.repo_id, d.file_path): d.content for d in held_out.documents() if (d.repo_id, d.file_path) in needed
    }
    tasks: list[FimTask] = []
    seen: set[tuple[str, str, int, int]] = set()
    skipped: Counter[str] = Counter()
    for t in range(attempts if order else 0):
        if len(tasks) == num_examples:
            break
        repo, path = order[t % len(order)]
        text = contents[(repo, path)]
        for kind in (kinds[(t + shift) % len(kinds)] for shift in range(len(kinds))):
            span = cut_hole(text, kind, random.Random(f"{seed}/{t // len(order)}/{repo}/{path}/{kind}"))
            if span is not None:
                break
        if span is None:
            skipped["no_hole_in_file"] += 1
            continue
        if (repo, path, *span) in seen:
            skipped["same_hole_twice"] += 1
            continue
        seen.add((repo, path, *span))
        start, end = span
        tasks.append(FimTask(repo, path, kind, text[:start], text[start:end], text[end:]))
    return tasks, skipped
