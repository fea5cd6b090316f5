"""Where a completion stops and what may be streamed: stop strings, held-back text, the FIM rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from personal_copilot.serve.completion_text import CompletionText, FimBoundary


def feed(completion: CompletionText, pieces: list[str]) -> list[str]:
    """Feeds the pieces as tokens; returns the deltas, the last from the final flush."""
    deltas, text = [], ""
    for piece in pieces:
        text += piece
        deltas.append(completion.update(text))
        if completion.finish_reason:
            return deltas
    deltas.append(completion.update(text, final=True))
    return deltas


def test_stop_string_ends_the_text_and_is_never_streamed() -> None:
    completion = CompletionText(stop=["\n\n"])
    deltas = feed(completion, ["x = 1", "\n", "\n", "y = 2"])
    assert completion.text == "x = 1" and completion.finish_reason == "stop_sequence"
    assert deltas == ["x = 1", "", ""]  # the first newline was held back: it might have started the stop string


def test_stop_string_split_across_tokens() -> None:
    completion = CompletionText(stop=["END"])
    assert feed(completion, ["ab", "cE", "N", "D", "more"]) == ["ab", "c", "", ""]
    assert completion.text == "abc"


def test_held_back_start_of_a_stop_is_released_when_it_is_not_one() -> None:
    completion = CompletionText(stop=["END"])
    assert feed(completion, ["aE", "N", "x"]) == ["a", "", "ENx", ""]
    assert completion.text == "aENx" and completion.finish_reason is None


def test_incomplete_utf8_is_held_back() -> None:
    completion = CompletionText()
    assert completion.update("caf\ufffd") == "caf"
    assert completion.update("café") == "é"


def test_suffix_repeated_on_a_later_line_ends_the_middle() -> None:
    prefix, suffix = "def f(x):\n    ", "\n    return y\n"
    completion = CompletionText(fim=FimBoundary.around(prefix, suffix))
    feed(completion, ["y = x + 1", "\n", "    return", " y", "\n", "print(1)"])
    assert completion.text == "y = x + 1"  # the newline before the repeat goes too: the suffix starts with one
    assert completion.finish_reason == "block_end"
    assert prefix + completion.text + suffix == "def f(x):\n    y = x + 1\n    return y\n"


def test_middle_that_leaves_the_block_is_cut_when_the_suffix_holds_the_rest() -> None:
    prefix = "def f(x):\n    if x:\n        "
    suffix = "\n    return 0\n"
    completion = CompletionText(fim=FimBoundary.around(prefix, suffix))
    feed(completion, ["a = 1\n", "        b = 2\n", "    c = 3\n", "    return 0\n"])
    assert completion.text == "a = 1\n        b = 2"


def test_dedent_to_code_below_the_suffix_level_is_not_cut() -> None:
    prefix = "def f(x):\n    if x:\n        "
    suffix = "\n\ndef g():\n    pass\n"  # the suffix continues at column 0: a dedent to 4 still belongs to f
    completion = CompletionText(fim=FimBoundary.around(prefix, suffix))
    feed(completion, ["return 1\n", "    return 0"])
    assert completion.text == "return 1\n    return 0" and completion.finish_reason is None


def test_block_rule_off_keeps_the_dedent_but_still_cuts_a_repeat() -> None:
    prefix, suffix = "def f(x):\n    if x:\n        ", "\n    return 0\n"
    completion = CompletionText(fim=FimBoundary.around(prefix, suffix, block_end=False))
    feed(completion, ["a = 1\n", "    c = 3\n", "    return 0\n"])
    assert completion.text == "a = 1\n    c = 3"


def test_an_empty_suffix_disables_the_fim_rules() -> None:
    completion = CompletionText(fim=FimBoundary.around("    x = ", ""))
    feed(completion, ["1\n", "y = 2\n"])
    assert completion.text == "1\ny = 2\n"


def test_a_line_that_may_still_be_cut_is_held_back() -> None:
    prefix, suffix = "def f(x):\n    if x:\n        ", "\n    return 0\n"
    completion = CompletionText(fim=FimBoundary.around(prefix, suffix))
    assert completion.update("a = 1\n") == "a = 1"  # a cut at the next line would take this newline too
    assert completion.update("a = 1\n    ") == ""  # the next line's indentation is not known yet
    assert completion.update("a = 1\n        b") == "\n        b"


PIECES = st.lists(st.text(alphabet="ab\n E D", min_size=1, max_size=4), max_size=12)


@given(PIECES)
def test_streamed_deltas_add_up_to_the_final_text(pieces: list[str]) -> None:
    completion = CompletionText(stop=["END", "\n\n"], fim=FimBoundary.around("x\n  ", "\n  b\n"))
    deltas = feed(completion, pieces)
    assert "".join(deltas) == completion.text
    assert "END" not in completion.text and "\n\n" not in completion.text
    assert "".join(pieces).startswith(completion.text)
