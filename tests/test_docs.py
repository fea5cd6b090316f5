"""The docs name only flags that exist: every `pcopilot <command> … --flag` in README.md and docs/*.md is a flag of
that command, and every flag docs/serve.md names on its own (`--name …` in inline code) is one of `pcopilot serve`."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from personal_copilot.cli import _flag_names, build_parser, runnable_commands

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FLAG = re.compile(r"(?<![\w-])(--[a-z][\w.]*)(?![\w.-])")
"""A flag of ours: words joined by `_` or `.`; a hyphenated one (`--served-model-name`) is another program's."""


@functools.cache
def flags_of(command: str) -> set[str]:
    return set(_flag_names(build_parser(command, runnable_commands()[command])))


def commands_in(text: str) -> list[tuple[str, str]]:
    """(command, its arguments) of each `pcopilot …` (or `-m personal_copilot …`) in a page, continued lines joined;
    arguments end at a backtick, a pipe, `&&` or `;`."""
    commands = []
    for match in re.finditer(
        r"(?:pcopilot|-m personal_copilot) ([a-z]+(?: [a-z]+)?)([^`|&;\n]*)", text.replace("\\\n", " ")
    ):
        words = match[1]
        name = words if words in runnable_commands() else words.split()[0]
        if name in runnable_commands():
            commands.append((name, match[2] if name == words else words.split()[1] + match[2]))
    return commands


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_flag_of_a_documented_command_exists(page: Path) -> None:
    wrong = [
        f"pcopilot {name} {flag}"
        for name, arguments in commands_in(page.read_text())
        for flag in FLAG.findall(arguments)
        if flag not in flags_of(name)
    ]
    assert not wrong, f"{page.name} names flags that do not exist: {wrong}"


def bare_flags_in(text: str) -> set[str]:
    """Flags named on their own in inline code (`--max_new_tokens`, `--adapters NAME=PATH`), fenced blocks left out."""
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return {FLAG.match(code)[1] for code in re.findall(r"`([^`\n]+)`", prose) if FLAG.match(code)}


def test_the_serve_page_names_only_flags_of_serve() -> None:
    named = bare_flags_in((REPO / "docs" / "serve.md").read_text())
    known = flags_of("serve") | flags_of("export vllm")  # the page's "one machine → many" explains export vllm too
    assert len(named) > 10 and not named - known, f"not flags of pcopilot serve or export vllm: {named - known}"


def test_the_checks_see_a_flag_that_does_not_exist() -> None:
    text = "Run `pcopilot serve --model m --threads 4` or\n```\npcopilot eval compare --model m \\\n  --bogus 1\n```"
    found = [(name, FLAG.findall(arguments)) for name, arguments in commands_in(text)]
    assert found == [("serve", ["--model", "--threads"]), ("eval compare", ["--model", "--bogus"])]
    assert "--threads" not in flags_of("serve")
    assert bare_flags_in("Use `--threads` or `--port 80`, not `benchmarks/serve.py --x`.\n```\n`--y`\n```") == {
        "--threads",
        "--port",
    }
