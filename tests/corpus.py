"""A small deterministic code corpus: four generated repositories (Python with Unicode, a JavaScript file, one long
module, and a file that spells out FIM sentinels as text)."""

from __future__ import annotations

import random
from pathlib import Path

REPOS = ("alpha", "beta", "gamma", "delta")
_WORDS = ("value", "total", "index", "count", "items", "result", "name", "path", "data", "user", "config", "cache")
_UNICODE = ("héllo wörld", "日本語のコメント", "emoji 🙂 ok", "Ελληνικά", "naïve café")


def _function(rng: random.Random, depth: int = 1) -> str:
    pad = "    " * depth
    name = "_".join(rng.sample(_WORDS, 2))
    args = ", ".join(rng.sample(_WORDS, rng.randint(1, 3)))
    lines = [f"{pad[4:]}def {name}({args}):", f'{pad}"""{rng.choice(_UNICODE)}: {name}."""']
    for _ in range(rng.randint(2, 8)):
        a, b = rng.sample(_WORDS, 2)
        kind = rng.randrange(4)
        if kind == 0:
            lines += [f"{pad}if {a} > {rng.randint(0, 99)}:", f"{pad}    {b} = {a} * {rng.randint(2, 9)}"]
        elif kind == 1:
            lines += [f"{pad}for {a} in range({b}):", f"{pad}    {b} += {a}  # {rng.choice(_UNICODE)}"]
        elif kind == 2:
            lines.append(f'{pad}{a} = "{rng.choice(_UNICODE)}".upper()')
        else:
            lines.append(f"{pad}{a} = {b} + {rng.randint(0, 999)}")
    lines.append(f"{pad}return {rng.choice(_WORDS)}")
    return "\n".join(lines) + "\n"


def _python_file(rng: random.Random, functions: int) -> str:
    header = f'"""Module {rng.randint(0, 10**6)}: {rng.choice(_UNICODE)}."""\n\nimport os\nimport sys\n\n'
    return header + "\n\n".join(_function(rng) for _ in range(functions))


def _js_file(rng: random.Random) -> str:
    body = "\n".join(f"  const {w} = {rng.randint(0, 99)}; // {rng.choice(_UNICODE)}" for w in rng.sample(_WORDS, 5))
    return f"export function {rng.choice(_WORDS)}() {{\n{body}\n  return {rng.choice(_WORDS)};\n}}\n"


def write_repositories(root: Path) -> list[Path]:
    """Writes the four repositories under `root` (deterministic) and returns their folders."""
    folders = []
    for number, repo in enumerate(REPOS):
        rng = random.Random(number)
        folder = root / repo
        for i in range(10):
            path = folder / "src" / f"module_{i}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_python_file(rng, rng.randint(1, 6)), encoding="utf-8")
        (folder / "web" / "app.js").parent.mkdir(parents=True, exist_ok=True)
        (folder / "web" / "app.js").write_text(_js_file(rng), encoding="utf-8")
        folders.append(folder)
    (folders[0] / "src" / "long_module.py").write_text(_python_file(random.Random(99), 40), encoding="utf-8")
    sentinels = 'PROMPT = "<fim_prefix>" + prefix + "<fim_suffix>" + suffix + "<fim_middle>"  # <|endoftext|>\n'
    (folders[1] / "src" / "prompts.py").write_text(sentinels * 3, encoding="utf-8")
    return folders
