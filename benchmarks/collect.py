"""Benchmark of `pcopilot collect` against the original blog's collection script, measured in the same run.

    .venv/bin/python benchmarks/collect.py     # defaults: 6 repos x 300 files, 3 repeats, workers 1 and 2
    .venv/bin/python benchmarks/collect.py --repos 12 --files-per-repo 500 --workers 1 2 4 --profile

(from the repository root; set PYTHONPATH=. when personal_copilot is not installed in the environment.)

Three datasets are timed:

- `generated`: N seeded git repositories (code in several languages, notebooks, binaries, minified bundles, lock
  files, generated code, vendored and shared duplicates, a planted fake secret), read through file:// URLs.
- `self`: this project's own source tree, given to collect as a folder (how `pcopilot collect .` reads it) and
  cloned by the baseline (the blog's script always clones).
- `python` (with `--python`, CPU-heavy: run it alone, under `nice`): the machine's Python installation
  (`lib/pythonX.Y`, ~50,000 files, ~1 GB), a large real corpus, at equal work: collect drops `site-packages/` as a
  junk directory by default, so it is given `site-packages` as a source of its own too, while the baseline walks
  the folder in place (nothing to clone). A `raw read` case (walk and read every file, nothing else) is the floor.

Cases, each repeated `--repeats` times (interleaved) and summarised by the median:

- `blog baseline`: what the blog's scripts did (reference §1): full `git clone` of every repository (in a pool of
  cpu_count processes, as `parallel_clone_repos.py`), then, sequentially, `os.walk`, the suffix blocklist and the
  `.git` / `__pycache__` / `xcodeproj` substring excludes, every other file read as UTF-8 (an error gives empty
  content, and empty rows are dropped), notebooks reduced to their code cells, and one Parquet file. The blog
  appended 1-row DataFrames with `pd.concat` (quadratic); here the rows are collected in a list and turned into
  one table, so the baseline is not slowed by that.
- `collect cold`: `run_collect` with a fresh output and clone cache.
- `collect re-run`: `run_collect` again into the output of the cold run, nothing changed (incremental path: no
  file is read again and no shard is rewritten).

Every time is printed next to its ratio to the baseline of the same dataset in the same run; files/s is the
baseline's files seen (the corpus) over each case's time, so that the column compares equal work. The redaction
recall per secret kind on the fake-token fixture (`tests/collect/fake_tokens.py`) is printed first. Progress bars
are off (PCOPILOT_PROGRESS=0). Nothing outside the temporary directory is written.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library at module level: collect's worker processes are spawned and import this module again.
if TYPE_CHECKING:
    from personal_copilot.collect.report import CollectReport

REPO_ROOT = Path(__file__).resolve().parents[1]
GIT_DATE = "2024-01-01T00:00:00+00:00"

# ---------------------------------------------------------------------------------------------------------------
# Generated repositories
# ---------------------------------------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


WORDS = _words(
    "account address agent alert archive asset audit batch bucket buffer cache channel chunk client cluster "
    "column config context counter cursor dataset delta device digest document driver entry event export feature "
    "field filter frame gateway graph handler header index input invoice item job kernel label layer ledger limit "
    "loader logger manifest matrix member message metric model module monitor node offset order output owner "
    "packet page parser partition payload peer pipeline policy pool prefix price profile query queue reader "
    "record region registry report request resource result retry route rule sample scheduler schema score "
    "segment sender session shard signal snapshot source span stage state status store stream subscriber "
    "summary table target task tenant thread token trace tracker transaction tree user value vector version "
    "window worker writer"
)
VERBS = _words(
    "build check compute create decode encode fetch filter find flush format load merge parse read refresh register "
    "remove render resolve send sort split update validate write"
)
SENTENCE_WORDS = WORDS + _words("the a of to when for with and is are be that this each before after all")


@dataclass(frozen=True)
class Lang:
    """Syntax templates of one language: enough to write plausible, varied source files."""

    ext: str
    head: str
    func: str
    assign: str
    call: str
    cond: str
    loop: str
    ret: str
    comment: str
    close: str = "}"
    """Closes a function; `cond_close` and `loop_close` close the other blocks ("" where indentation does)."""
    cond_close: str = "}"
    loop_close: str = "}"
    indent: str = "    "
    tail: str = ""
    case: str = "snake"


LANGS: dict[str, Lang] = {
    "python": Lang(
        "py",
        '"""{sentence}."""\n\nimport {mod}\nfrom {mod2} import {Name}\n\n{CONST} = {n}\n',
        "def {name}({a}, {b}={n}):",
        "{a} = {b} {op} {n}",
        "{a}.{verb}({c}, {n})",
        "if {a} {cmp} {n}:",
        "for {a} in {b}:",
        "return {a}",
        "#",
        close="",
        cond_close="",
        loop_close="",
    ),
    "javascript": Lang(
        "js",
        "import {{ {Name} }} from './{mod}';\n\nconst {CONST} = {n};\n",
        "export function {name}({a}, {b} = {n}) {{",
        "const {a} = {b} {op} {n};",
        "{a}.{verb}({c}, {n});",
        "if ({a} {cmp} {n}) {{",
        "for (const {a} of {b}) {{",
        "return {a};",
        "//",
        indent="  ",
        case="camel",
    ),
    "typescript": Lang(
        "ts",
        "import type {{ {Name} }} from './{mod}';\n\nexport const {CONST}: number = {n};\n",
        "export function {name}({a}: number, {b}: {Name}): {Name} | undefined {{",
        "const {a}: number = {b} {op} {n};",
        "{a}.{verb}({c}, {n});",
        "if ({a} {cmp} {n}) {{",
        "for (const {a} of {b}) {{",
        "return {a};",
        "//",
        indent="  ",
        case="camel",
    ),
    "go": Lang(
        "go",
        'package {mod}\n\nimport (\n\t"fmt"\n\t"{mod2}"\n)\n\nconst {Name} = {n}\n',
        "func {Name}({a} int, {b} string) ({a}Out int, err error) {{",
        "{a} := {b} {op} {n}",
        "{a}.{Verb}({c}, {n})",
        "if {a} {cmp} {n} {{",
        "for _, {a} := range {b} {{",
        "return {a}, nil",
        "//",
        indent="\t",
        case="camel",
    ),
    "rust": Lang(
        "rs",
        "use std::collections::HashMap;\nuse crate::{mod}::{Name};\n\nconst {CONST}: usize = {n};\n",
        "pub fn {name}({a}: i64, {b}: &{Name}) -> Result<i64, Error> {{",
        "let {a} = {b} {op} {n};",
        "{a}.{verb}({c}, {n})?;",
        "if {a} {cmp} {n} {{",
        "for {a} in {b}.iter() {{",
        "return Ok({a});",
        "//",
    ),
    "java": Lang(
        "java",
        "package com.example.{mod};\n\nimport java.util.List;\n\npublic final class {Name} {{\n",
        "public static int {name}(int {a}, {Name} {b}) {{",
        "int {a} = {b} {op} {n};",
        "{a}.{verb}({c}, {n});",
        "if ({a} {cmp} {n}) {{",
        "for (var {a} : {b}) {{",
        "return {a};",
        "//",
        tail="}\n",
        case="camel",
    ),
    "c": Lang(
        "c",
        '#include <stdio.h>\n#include "{mod}.h"\n\n#define {CONST} {n}\n',
        "static int {name}(int {a}, const struct {mod} *{b}) {{",
        "int {a} = {b} {op} {n};",
        "{a}_{verb}({c}, {n});",
        "if ({a} {cmp} {n}) {{",
        "for (size_t i = 0; i < {n}; i++) {{",
        "return {a};",
        "//",
    ),
    "shell": Lang(
        "sh",
        "#!/usr/bin/env bash\nset -euo pipefail\n\n{CONST}={n}\n",
        "{name}() {{",
        'local {a}="$(( {b} {op} {n} ))"',
        '{verb}_{c} "${a}" {n}',
        'if [ "${a}" -gt {n} ]; then',
        "for {a} in ${b}; do",
        'echo "${a}"',
        "#",
        cond_close="fi",
        loop_close="done",
    ),
}
LANG_WEIGHTS = {"python": 40, "javascript": 14, "typescript": 11, "go": 10, "rust": 8, "java": 8, "c": 5, "shell": 4}
TOP_DIRS = ("src", "lib", "pkg", "app", "internal", "tests", "tools", "services", "core")


class RepoWriter:
    """Writes one synthetic repository: seeded, so the same seed gives the same bytes (and commit)."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root, self.rng = root, rng
        self.paths: set[str] = set()

    # -- words ----------------------------------------------------------------------------------------------------
    def ident(self, case: str = "snake", parts: int = 2) -> str:
        words = [self.rng.choice(WORDS if i else VERBS + WORDS) for i in range(parts)]
        if case == "camel":
            return words[0] + "".join(w.title() for w in words[1:])
        if case == "pascal":
            return "".join(w.title() for w in words)
        return "_".join(words)

    def sentence(self, words: int = 8) -> str:
        return " ".join(self.rng.choice(SENTENCE_WORDS) for _ in range(words)).capitalize()

    def fill(self, template: str, lang: Lang) -> str:
        """The template with its placeholders drawn at random, each only if the template uses it."""
        return template.format_map(_Placeholders(self, lang))

    # -- source code ----------------------------------------------------------------------------------------------
    def block(self, lang: Lang, depth: int, lines: list[str]) -> None:
        pad = lang.indent * depth
        for _ in range(self.rng.randint(2, 7)):
            kind = self.rng.random()
            if kind < 0.12:
                lines.append(f"{pad}{lang.comment} {self.sentence(self.rng.randint(4, 12))}")
            elif kind < 0.30 and depth < 3:
                opening, closing = self.rng.choice(((lang.cond, lang.cond_close), (lang.loop, lang.loop_close)))
                lines.append(pad + self.fill(opening, lang))
                self.block(lang, depth + 1, lines)
                if closing:
                    lines.append(pad + closing)
            elif kind < 0.65:
                lines.append(pad + self.fill(lang.assign, lang))
            else:
                lines.append(pad + self.fill(lang.call, lang))
        lines.append(pad + self.fill(lang.ret, lang))

    def source(self, lang: Lang) -> str:
        lines = [self.fill(lang.head, lang)]
        base = lang.indent if lang.tail else ""
        for _ in range(self.rng.randint(2, 9)):
            lines.append(f"\n{base}{lang.comment} {self.sentence(self.rng.randint(6, 14))}")
            lines.append(base + self.fill(lang.func, lang))
            self.block(lang, 1 + bool(lang.tail), lines)
            if lang.close:
                lines.append(base + lang.close)
        return "\n".join(lines) + "\n" + lang.tail

    # -- files ----------------------------------------------------------------------------------------------------
    def path(self, directory: str, stem: str, ext: str) -> str:
        path = f"{directory}/{stem}.{ext}" if ext else f"{directory}/{stem}"
        number = 2
        while path in self.paths:
            path, number = f"{directory}/{stem}_{number}.{ext}", number + 1
        self.paths.add(path)
        return path

    def write(self, relative: str, content: str | bytes) -> None:
        self.paths.add(relative)
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_bytes(content)

    def code_file(self) -> None:
        name = self.rng.choices(list(LANG_WEIGHTS), weights=list(LANG_WEIGHTS.values()))[0]
        lang = LANGS[name]
        depth = self.rng.randint(1, 3)
        directory = "/".join([self.rng.choice(TOP_DIRS), *(self.rng.choice(WORDS) for _ in range(depth - 1))])
        self.write(self.path(directory, self.ident(), lang.ext), self.source(lang))

    def notebook(self, index: int) -> None:
        cells: list[dict[str, Any]] = [{"cell_type": "markdown", "metadata": {}, "source": [f"# {self.sentence()}"]}]
        cells.append(_code_cell(["!pip install -q datasets\n", "!nvidia-smi"]))
        cells.append(_code_cell(["%%capture\n", f"import {self.rng.choice(WORDS)}"]))
        for _ in range(self.rng.randint(3, 8)):
            code = self.source(LANGS["python"]).splitlines(keepends=True)[4:]
            cells.append({"cell_type": "markdown", "metadata": {}, "source": [self.sentence(14)]})
            cells.append(_code_cell(code, self.rng.random() < 0.4 and self.rng.randbytes(6000)))
        kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
        notebook = {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
        self.write(f"notebooks/{index:02d}_{self.ident()}.ipynb", json.dumps(notebook, indent=1) + "\n")

    def extras(self, repo_index: int, notebooks: int, shared: dict[str, str]) -> None:
        """Files that are not plain hand-written code, and the ones planted for the filters and dedup."""
        rng = self.rng
        self.write("README.md", f"# {self.ident('pascal')}\n\n" + "\n\n".join(self.sentence(30) for _ in range(6)))
        self.write(".gitignore", "__pycache__/\n*.pyc\nnode_modules/\n")
        self.write(".github/workflows/ci.yml", "on: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n")
        self.write("pyproject.toml", f'[project]\nname = "{self.ident()}"\nversion = "0.{repo_index}.0"\n')
        for i in range(3):
            self.write(f"docs/{self.ident()}_{i}.md", "\n\n".join(self.sentence(25) for _ in range(12)))
        config = {self.ident(): {self.ident(): rng.randrange(1000) for _ in range(8)} for _ in range(10)}
        self.write("config/defaults.json", json.dumps(config, indent=2))
        self.write("data/samples.csv", "\n".join(",".join(str(rng.random()) for _ in range(6)) for _ in range(300)))
        self.write("assets/logo.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(20_000))
        self.write("assets/Screenshot.PNG", b"\x89PNG\r\n\x1a\n" + rng.randbytes(30_000))
        self.write("models/weights.pt", rng.randbytes(50_000))
        self.write(
            "static/app.min.js",
            ";".join(self.fill(LANGS["javascript"].call, LANGS["javascript"]) for _ in range(1200)),
        )
        self.write("web/bundle.js", "".join(self.source(LANGS["javascript"]).split("\n")))
        lock = {"lockfileVersion": 3, "packages": {f"node_modules/{w}": {"version": "1.0.0"} for w in WORDS}}
        self.write("package-lock.json", json.dumps(lock, indent=2))
        proto = "# Generated by the protocol buffer compiler.  DO NOT EDIT!\n" + self.source(LANGS["python"])
        self.write(f"proto/{self.ident()}_pb2.py", proto)
        python = sorted(p for p in self.paths if p.endswith(".py"))
        for path in rng.sample(python, k=min(3, len(python))):
            self.write(f"vendor/{path}", (self.root / path).read_text(encoding="utf-8"))
        for path, content in shared.items():  # identical in every repository, plus a near copy with one edit
            self.write(path, content)
            self.write(path.replace(".py", "_copy.py"), content.replace("return", "return  ", 1) + "# local\n")
        secret = (
            f'AWS_ACCESS_KEY_ID = "{"AKIA" + _random_chars(rng, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")}"\n'
            if repo_index % 2 == 0
            else f'GITHUB_TOKEN = "{"ghp_" + _random_chars(rng, 36)}"\n'
        )
        self.write("config/settings.py", f'"""Settings."""\n\nDEBUG = False\n{secret}TIMEOUT = 30\n')
        for index in range(notebooks):
            self.notebook(index)


_DRAWS: dict[str, Callable[[RepoWriter, str], object]] = {
    "name": lambda w, case: w.ident(case),
    "Name": lambda w, case: w.ident("pascal"),
    "CONST": lambda w, case: w.ident().upper(),
    "a": lambda w, case: w.ident(case, 1),
    "b": lambda w, case: w.ident(case, w.rng.choice((1, 2))),
    "c": lambda w, case: w.ident(case),
    "verb": lambda w, case: w.rng.choice(VERBS),
    "Verb": lambda w, case: w.rng.choice(VERBS).title(),
    "mod": lambda w, case: w.rng.choice(WORDS),
    "mod2": lambda w, case: w.rng.choice(WORDS),
    "n": lambda w, case: w.rng.randrange(1, 4096),
    "op": lambda w, case: w.rng.choice("+-*/%"),
    "cmp": lambda w, case: w.rng.choice(("<", ">", "==", "!=", ">=")),
    "sentence": lambda w, case: w.sentence(),
}


class _Placeholders(dict):
    """Draws a template placeholder the first time it is looked up (`str.format_map` looks up only those used)."""

    def __init__(self, writer: RepoWriter, lang: Lang) -> None:
        super().__init__()
        self.writer, self.case = writer, lang.case

    def __missing__(self, key: str) -> object:
        value = self[key] = _DRAWS[key](self.writer, self.case)
        return value


def _code_cell(source: list[str], image: bytes | bool = False) -> dict[str, Any]:
    outputs: list[dict[str, Any]] = [{"output_type": "stream", "name": "stdout", "text": ["done\n"]}]
    if image:
        png = base64.b64encode(bytes(image)).decode()
        outputs.append({"output_type": "display_data", "metadata": {}, "data": {"image/png": png}})
    return {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": outputs, "source": source}


def _random_chars(rng: random.Random, count: int, alphabet: str = "") -> str:
    alphabet = alphabet or "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(count))


def _git(args: list[str], cwd: Path) -> None:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "GIT_AUTHOR_DATE": GIT_DATE,
        "GIT_COMMITTER_DATE": GIT_DATE,
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def generate_repos(parent: Path, count: int, files_per_repo: int, notebooks: int, seed: int) -> list[Path]:
    """Writes `count` committed git repositories of about `files_per_repo` files each under `parent`."""
    shared = {"src/common/retry_policy.py": RepoWriter(parent, random.Random(seed)).source(LANGS["python"])}
    repos = []
    for index in range(count):
        root = parent / f"repo-{index:02d}"
        writer = RepoWriter(root, random.Random(seed * 1000 + index))
        planted = 22 + 2 * len(shared) + notebooks
        for _ in range(max(1, files_per_repo - planted)):
            writer.code_file()
        writer.extras(index, notebooks, shared)
        _git(["init", "-q", "--initial-branch=main"], root)
        _git(["add", "-A"], root)
        _git(["commit", "-q", "-m", "synthetic repository"], root)
        repos.append(root)
    return repos


def work_tree_size(repos: list[Path]) -> tuple[int, int]:
    """Number of files and bytes outside `.git/`."""
    files = [p for r in repos for p in r.rglob("*") if p.is_file() and ".git" not in p.relative_to(r).parts]
    return len(files), sum(p.stat().st_size for p in files)


# ---------------------------------------------------------------------------------------------------------------
# The blog's script (reference §1.1-1.4), re-implemented
# ---------------------------------------------------------------------------------------------------------------

BLOG_IMAGE = ("png", "jpg", "jpeg", "gif")
BLOG_VIDEO = ("mp4", "jfif")
BLOG_DOC = ("key", "PDF", "pdf", "docx", "xlsx", "pptx")
BLOG_AUDIO = ("flac", "ogg", "mid", "webm", "wav", "mp3")
BLOG_ARCHIVE = ("jar", "aar", "gz", "zip", "bz2")
BLOG_OTHERS = ("npy", "index", "inv", "index", "DS_Store", "rdb", "pack", "idx", "glb", "gltf", "len", "otf")
BLOG_OTHERS += ("unitypackage", "ttf", "xz", "pcm", "opus")
BLOG_ANTI_FORMATS = BLOG_IMAGE + BLOG_VIDEO + BLOG_DOC + BLOG_AUDIO + BLOG_ARCHIVE + BLOG_OTHERS
BLOG_PATH_EXCLUDES = (".git", "__pycache__", "xcodeproj")


@dataclass
class Outcome:
    """What one timed run saw and kept."""

    files_seen: int
    files_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    secrets: int = 0


def blog_clone_all(urls: list[str], destination: Path) -> None:
    """`git clone URL hf_public_repos/NAME` (full history, return codes ignored) in a pool of cpu_count workers."""
    destination.mkdir(parents=True)

    def clone(url: str) -> None:
        name = url.rstrip("/").rsplit("/", 1)[-1]
        subprocess.run(["git", "clone", url, str(destination / name)], capture_output=True, check=False)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(clone, urls))


def _blog_keep_cell(cell: dict[str, Any]) -> bool:
    return not cell["source"].startswith("!") and "%%capture" not in cell["source"]


def blog_read_file(file_path: str) -> str:
    """`process_file`: UTF-8 text, a notebook's code cells glued together, or "" on any error."""
    try:
        with open(file_path, encoding="utf-8") as file:
            content = file.read()
        if file_path.endswith("ipynb"):  # nbformat.reads(content, NO_CONVERT) joins each cell's source lines
            cells = json.loads(content)["cells"]
            for cell in cells:
                cell["source"] = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            content = "".join(c["source"] for c in cells if c["cell_type"] == "code" and _blog_keep_cell(c))
    except Exception:
        content = ""
    return content


def blog_file_paths(directory: Path) -> tuple[list[tuple[str, str]], int]:
    """`read_repository_files`' walk: (repo_id as the blog computed it, path) of files past the blocklists, and the
    number of work-tree files (those outside `.git/`) it looked at."""
    paths, seen = [], 0
    for root, _, files in os.walk(directory):
        inside_git = ".git" in Path(root).relative_to(directory).parts
        for file in files:
            seen += not inside_git
            file_path = os.path.join(root, file)
            if not file_path.endswith(BLOG_ANTI_FORMATS) and all(k not in file_path for k in BLOG_PATH_EXCLUDES):
                paths.append((os.path.dirname(root), file_path))
    return paths, seen


def blog_serialize(rows: list[dict[str, str]], path: Path) -> None:
    """One table, one Parquet file (pandas as the DHS copy, or pyarrow where pandas is missing)."""
    try:
        import pandas as pd
    except ImportError:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        pd.DataFrame(rows, columns=["repo_id", "file_path", "content"]).to_parquet(path)


def run_blog_baseline(urls: list[str], work: Path) -> Outcome:
    clones = work / "hf_public_repos"
    blog_clone_all(urls, clones)
    return run_blog_on_folder(clones, work)


def run_blog_on_folder(folder: Path, work: Path) -> Outcome:
    """The blog's walk, read and serialization of the repositories under `folder`."""
    work.mkdir(parents=True, exist_ok=True)
    paths, seen = blog_file_paths(folder)
    rows = []
    for repo_id, file_path in paths:
        content = blog_read_file(file_path)
        if content != "":
            rows.append({"repo_id": repo_id, "file_path": file_path, "content": content})
    blog_serialize(rows, work / "hf_stack.parquet")
    return Outcome(seen, len(rows), {"blocklist": seen - len(paths), "unreadable_or_empty": len(paths) - len(rows)})


def run_raw_read(folder: Path) -> Outcome:
    """The floor: walk the folder and read every file's bytes, nothing else."""
    seen = 0
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                with open(path, "rb") as file:
                    file.read()
            seen += 1
    return Outcome(seen, seen)


# ---------------------------------------------------------------------------------------------------------------
# pcopilot collect
# ---------------------------------------------------------------------------------------------------------------


def run_ours(sources: list[str], output: Path, cache: Path, workers: int, expect: str) -> Outcome:
    """`run_collect` with the given state directories; every source must end with status `expect`."""
    from personal_copilot.collect.config import CollectConfig
    from personal_copilot.collect.run import run_collect

    report: CollectReport = run_collect(
        CollectConfig(sources=sources, output=output, workers=workers, cache_dir=cache)
    )
    statuses = Counter(source.status for source in report.sources)
    if statuses != Counter({expect: len(sources)}):
        errors = [f"{s.repo_id}: {s.status} {s.error or ''}" for s in report.sources if s.status != expect]
        raise RuntimeError(f"collect: expected every source {expect}, got {dict(statuses)}: {errors}")
    dropped = {**report.dropped, "duplicates": report.duplicates_exact + report.duplicates_near}
    return Outcome(report.files_seen, report.files_kept, dropped, sum(report.secrets.values()))


def warm_up_imports() -> None:
    """Imports (and builds the cached detectors of) both sides once, so that no timed run pays for it alone."""
    import pyarrow.parquet  # noqa: F401

    from personal_copilot.collect import run  # noqa: F401
    from personal_copilot.collect.config import DedupConfig
    from personal_copilot.collect.dedup import minhash_signature
    from personal_copilot.collect.secrets import redact_secrets

    with contextlib.suppress(ImportError):
        import pandas  # noqa: F401
    redact_secrets("warm up")
    minhash_signature("warm up", DedupConfig())


# ---------------------------------------------------------------------------------------------------------------
# Timing and the table
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """A timed case: its runs' seconds, and what the last one saw and kept."""

    name: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    """CPU time of this process and of its children (workers, git): comparable on a machine shared with others."""
    outcome: Outcome | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def record(self, run: Callable[[], Outcome]) -> None:
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        outcome = run()
        self.seconds.append(time.perf_counter() - start)
        self.cpu_seconds.append(_cpu_seconds() - cpu_start)
        counts = (outcome.files_seen, outcome.files_kept)
        if self.outcome and (self.outcome.files_seen, self.outcome.files_kept) != counts:
            raise RuntimeError(f"{self.name}: runs disagree: {self.outcome} then {outcome}")
        self.outcome = outcome


def _cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def bench_dataset(
    baseline_urls: list[str], our_sources: list[str], work: Path, workers: list[int], repeats: int
) -> list[Case]:
    """Times the baseline and collect (cold, then re-run, for each worker count), `repeats` times, interleaved: the
    worker counts go in turn forwards and backwards, so that drift in the machine's load spreads over all cases."""
    baseline = Case("blog baseline")
    cases = {w: (Case(f"collect cold, workers={w}"), Case(f"collect re-run, workers={w}")) for w in workers}
    for repeat in range(repeats):
        blog = fresh(work / "blog")
        baseline.record(lambda b=blog: run_blog_baseline(baseline_urls, b))
        for w, (cold, rerun) in list(cases.items())[:: -1 if repeat % 2 else 1]:
            output, cache = fresh(work / f"out-{w}"), fresh(work / f"cache-{w}")
            cold.record(lambda o=output, c=cache, w=w: run_ours(our_sources, o, c, w, "collected"))
            rerun.record(lambda o=output, c=cache, w=w: run_ours(our_sources, o, c, w, "unchanged"))
    return [baseline, *(case for pair in cases.values() for case in pair)]


def table_rows(dataset: str, cases: list[Case]) -> Iterator[list[str]]:
    base = cases[0].median
    assert cases[0].outcome is not None
    corpus = cases[0].outcome.files_seen
    for case in cases:
        assert case.outcome is not None
        seconds = case.median
        ratio = seconds / base
        speed = f"{1 / ratio:.1f}x faster" if ratio < 1 else f"{ratio:.1f}x slower"
        yield [
            dataset,
            case.name,
            f"{case.outcome.files_seen:,}",
            f"{case.outcome.files_kept:,}",
            f"{seconds:.3f}",
            f"{min(case.seconds):.3f}-{max(case.seconds):.3f}",
            f"{corpus / seconds:,.0f}",
            "1.00 (baseline)" if case is cases[0] else f"{ratio:.2f} ({speed})",
            f"{statistics.median(case.cpu_seconds):.1f}",
            f"{statistics.median(case.cpu_seconds) / statistics.median(cases[0].cpu_seconds):.2f}",
        ]


def bench_python_installation(root: Path, work: Path, workers: list[int], repeats: int) -> list[Case]:
    """The Python installation at equal work: the baseline and raw reading walk `root`; collect gets `root` and its
    `site-packages` (which it would otherwise drop as a junk directory)."""
    sources = [str(root), *(str(p) for p in [root / "site-packages"] if p.is_dir())]
    baseline, raw = Case("blog baseline"), Case("raw read")
    cases = {w: (Case(f"collect cold, workers={w}"), Case(f"collect re-run, workers={w}")) for w in workers}
    for _ in range(repeats):
        baseline.record(lambda: run_blog_on_folder(root, fresh(work / "blog")))
        raw.record(lambda: run_raw_read(root))
        for w, (cold, rerun) in cases.items():
            output, cache = fresh(work / f"out-{w}"), fresh(work / f"cache-{w}")
            cold.record(lambda o=output, c=cache, w=w: run_ours(sources, o, c, w, "collected"))
            rerun.record(lambda o=output, c=cache, w=w: run_ours(sources, o, c, w, "unchanged"))
        shutil.rmtree(work / "blog", ignore_errors=True)
    return [baseline, raw, *(case for pair in cases.values() for case in pair)]


def print_secret_recall() -> None:
    """Redaction recall per kind on the fake-token fixture of the tests."""
    sys.path.insert(0, str(REPO_ROOT))
    from personal_copilot.collect.secrets import redact_secrets
    from tests.collect.fake_tokens import FAKE_TOKENS

    print("secret redaction recall on tests/collect/fake_tokens.py (tokens removed / planted):")
    cells = []
    for kind, pairs in FAKE_TOKENS.items():
        removed = sum(token not in redact_secrets(line)[0] for line, token in pairs)
        cells.append(f"{kind} {removed}/{len(pairs)}")
    print("  " + ", ".join(cells) + "\n")


def print_table(rows: list[list[str]]) -> None:
    header = ["dataset", "case", "files seen", "files kept", "median s", "min-max s", "files/s", "time / baseline"]
    header += ["cpu s", "cpu / baseline"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def print_drops(dataset: str, cases: list[Case]) -> None:
    for case in [c for c in cases if c.name.startswith(("blog", "collect cold"))][:2]:
        assert case.outcome is not None
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(case.outcome.dropped.items()) if v)
        secrets = f"; secrets redacted {case.outcome.secrets}" if case.outcome.secrets else ""
        print(f"  {dataset}, {case.name}: dropped {reasons or 'nothing'}{secrets}")


# ---------------------------------------------------------------------------------------------------------------
# Profiling (optional)
# ---------------------------------------------------------------------------------------------------------------


def profile_cold_run(sources: list[str], work: Path, top: int = 25) -> None:
    """cProfile of one cold `run_collect` with workers=1 (everything in this process), by cumulative and own time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    output, cache = fresh(work / "profile-out"), fresh(work / "profile-cache")
    profiler.runcall(run_ours, sources, output, cache, 1, "collected")
    for sort in ("cumulative", "tottime"):
        print(f"\n--- cProfile, cold run, workers=1, top {top} by {sort} ---")
        pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(sort).print_stats(top)


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repos", type=int, default=6, help="generated repositories (default: 6)")
    parser.add_argument(
        "--files-per-repo", type=int, default=300, help="files per generated repository (default: 300)"
    )
    parser.add_argument("--notebooks", type=int, default=3, help="notebooks per generated repository (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated repositories (default: 0)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timed case; the median is shown (3)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="collect --workers values to time (default: 1 2)"
    )
    parser.add_argument("--skip-self", action="store_true", help="do not time this project's own source tree")
    parser.add_argument("--self-root", type=Path, default=REPO_ROOT, help="the source tree of the `self` dataset")
    parser.add_argument("--workdir", type=Path, help="where to put repositories and outputs (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory afterwards")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one cold workers=1 run")
    parser.add_argument(
        "--python",
        action="store_true",
        help="also time the Python installation (lib/pythonX.Y, ~50,000 files, ~1 GB) at equal work, 1 repeat",
    )
    parser.add_argument("--python-root", type=Path, default=Path(sysconfig.get_paths()["stdlib"]), help="its folder")
    args = parser.parse_args(argv)
    if args.repos < 1 or args.files_per_repo < 40 or args.repeats < 1 or min(args.workers) < 1:
        parser.error("need --repos >= 1, --files-per-repo >= 40, --repeats >= 1 and --workers >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["PCOPILOT_PROGRESS"] = "0"
    work = Path(tempfile.mkdtemp(prefix="pcopilot-bench-", dir=args.workdir))
    try:
        start = time.perf_counter()
        repos = generate_repos(work / "repos", args.repos, args.files_per_repo, args.notebooks, args.seed)
        files, size = work_tree_size(repos)
        print(
            f"generated {len(repos)} repositories, {files:,} files, {size / 1e6:.1f} MB, in"
            f" {time.perf_counter() - start:.1f} s (seed {args.seed}); {os.cpu_count()} CPUs,"
            f" Python {sys.version.split()[0]}, repeats {args.repeats}\n"
        )
        print_secret_recall()
        warm_up_imports()
        urls = [repo.as_uri() for repo in repos]
        datasets = {"generated": bench_dataset(urls, urls, work / "generated", args.workers, args.repeats)}
        if not args.skip_self:
            root = args.self_root.resolve()
            datasets["self"] = bench_dataset([root.as_uri()], [str(root)], work / "self", args.workers, args.repeats)
        if args.python:
            python_root = args.python_root.resolve()
            datasets["python"] = bench_python_installation(python_root, work / "python", [max(args.workers)], 1)
        print_table([row for name, cases in datasets.items() for row in table_rows(name, cases)])
        print("\ntime / baseline = median seconds of the case / median seconds of the blog baseline on the same data;")
        print(
            "cpu = CPU seconds of the process and its children (workers, git), the measure to trust on a busy machine."
        )
        print("files/s = the baseline's files seen (the corpus) / median seconds. What the cold runs dropped:")
        for name, cases in datasets.items():
            print_drops(name, cases)
        if args.profile:
            profile_cold_run(urls, work)
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
