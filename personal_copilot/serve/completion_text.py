"""The text of one completion as its tokens arrive: where it stops, and how much of it may be streamed yet.

A completion ends at the first of the request's stop strings (which is not part of the text) and, for FIM, where the
middle would run into code the suffix already holds:

- **suffix repeated** (always): a line of the middle (after its first, which finishes the cursor's line) that equals
  the suffix's first non-blank line is where the middle ends; the model has started writing the suffix again.
- **block end** (`--fim_stop_at_block_end`, on by default): when the suffix holds more code, a line of the middle
  (after its first) that is indented less than the cursor's line and no deeper than the suffix's first code line has
  left the cursor's block for code that follows it, which the suffix already holds; the middle ends before it.

A middle cut at a line start loses the newline before that line too when the suffix starts with a newline, so the
joined text has no blank line that neither side had. Text is streamed only once it can no longer be cut: the start
of a possible stop string, a trailing incomplete UTF-8 sequence (U+FFFD) and, under the FIM rules, a line that may
still turn out to be cut are held back. Pure Python; the engine feeds it decoded text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from personal_copilot.serve.generation import FinishReason

REPLACEMENT_CHARACTER = "\ufffd"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


@dataclass(frozen=True)
class FimBoundary:
    """What the FIM rules need to know about the code around the cursor."""

    cursor_indent: int
    """Indentation of the cursor's line (the prefix's last line)."""
    suffix_line: str | None
    """The suffix's first non-blank line after the cursor's line (None: the suffix holds no more code)."""
    suffix_starts_line: bool
    """The suffix starts with a newline: the cursor is at the end of its line."""
    block_end: bool

    @classmethod
    def around(cls, prefix: str, suffix: str, block_end: bool = True) -> FimBoundary:
        cursor_line = prefix.rsplit("\n", 1)[-1]
        later_lines = suffix.split("\n")[1:]
        suffix_line = next((line.rstrip() for line in later_lines if line.strip()), None)
        return cls(_indent(cursor_line), suffix_line, suffix.startswith(("\n", "\r\n")), block_end)

    def leaves_block(self, line: str) -> bool:
        """A line (after the middle's first) that has left the cursor's block for code the suffix holds."""
        if not self.block_end or self.suffix_line is None or not line.strip():
            return False
        return _indent(line) < self.cursor_indent and _indent(line) <= _indent(self.suffix_line)

    def repeats_suffix(self, line: str) -> bool:
        return self.suffix_line is not None and line.rstrip() == self.suffix_line

    def cut(self, text: str, final: bool) -> int | None:
        """Where the middle `text` ends under the FIM rules (None: not cut); an unfinished last line only counts
        when `final`."""
        start = text.find("\n") + 1
        if start == 0:
            return None  # still on the cursor's line
        while True:
            end = text.find("\n", start)
            line = text[start:] if end < 0 else text[start:end]
            complete = end >= 0 or final
            if self.leaves_block(line) or (complete and self.repeats_suffix(line)):
                return self._line_cut(text, start)
            if end < 0:
                return None
            start = end + 1

    def _line_cut(self, text: str, line_start: int) -> int:
        if self.suffix_starts_line and text[:line_start].endswith("\n"):
            return line_start - (2 if text[:line_start].endswith("\r\n") else 1)
        return line_start

    def pending(self, text: str) -> int:
        """Characters at the end of `text` that a later token may still cut: an unfinished line after the first
        while its indentation is undecided or it may grow into the suffix's first line (and the newline before
        it, when a cut would take that too)."""
        start = text.rfind("\n") + 1
        if start == 0:
            return 0
        line = text[start:]
        undecided_indent = self.block_end and self.suffix_line is not None and not line.strip()
        may_repeat = self.suffix_line is not None and self.suffix_line.startswith(line.rstrip())
        if not (undecided_indent or may_repeat):
            return 0
        if self.suffix_starts_line:  # a cut would take the line's newline too
            return len(line) + (2 if text[:start].endswith("\r\n") else 1)
        return len(line)


def _partial_stop(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that is the start of a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class CompletionText:
    """Follows the decoded text of one completion: `update(text)` with the whole text so far returns what may be
    streamed now; once `finish_reason` is set the completion is over and `text` is final.

    Args:
        stop: stop strings; the completion ends before the first one.
        fim: the FIM boundary of a FIM request (None for plain and chat prompts).
    """

    def __init__(self, stop: Sequence[str] = (), fim: FimBoundary | None = None) -> None:
        self.stop = [s for s in stop if s]
        self.fim = fim
        self.text = ""
        self.emitted = 0
        self.finish_reason: FinishReason | None = None

    def update(self, text: str, final: bool = False) -> str:
        """Takes the whole decoded text so far; returns the newly committed part. With `final`, nothing is held back
        (the generation ended for another reason)."""
        if self.finish_reason is not None:
            return ""
        cut, reason = self._cut(text, final)
        if cut is not None:
            self.text = text[: max(cut, self.emitted)]
            self.finish_reason = reason
            return self._commit(len(self.text))
        self.text = text
        if final:
            return self._commit(len(text))
        held = _partial_stop(text, self.stop)
        if self.fim is not None:
            held = max(held, self.fim.pending(text))
        if text.endswith(REPLACEMENT_CHARACTER):
            held = max(held, len(text) - len(text.rstrip(REPLACEMENT_CHARACTER)))
        return self._commit(len(text) - held)

    def _cut(self, text: str, final: bool) -> tuple[int | None, FinishReason | None]:
        search_from = max(0, self.emitted - max((len(s) for s in self.stop), default=0))
        positions = [p for p in (text.find(s, search_from) for s in self.stop) if p >= 0]
        cut, reason = (min(positions), "stop_sequence") if positions else (None, None)
        fim_cut = self.fim.cut(text, final) if self.fim is not None else None
        if fim_cut is not None and (cut is None or fim_cut < cut):
            cut, reason = fim_cut, "block_end"
        return cut, reason

    def _commit(self, end: int) -> str:
        if end <= self.emitted:
            return ""
        delta = self.text[self.emitted : end]
        self.emitted = end
        return delta
