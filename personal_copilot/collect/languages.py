"""Which files count as code: the default extension and file-name allowlist, junk directories and lock files.

Matching is case-insensitive on the extension (`.PY` is Python) and by exact path component for directories
(`.git/` is junk, `.github/` is not). Users widen or narrow the set with `--include` / `--exclude` globs.
"""

from __future__ import annotations

from pathlib import PurePosixPath

LANGUAGE_BY_EXTENSION: dict[str, str] = {
    ".py": "Python", ".pyi": "Python", ".pyx": "Cython", ".ipynb": "Jupyter Notebook",
    ".js": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript", ".jsx": "JavaScript",
    ".ts": "TypeScript", ".mts": "TypeScript", ".cts": "TypeScript", ".tsx": "TypeScript",
    ".vue": "Vue", ".svelte": "Svelte", ".html": "HTML", ".htm": "HTML", ".css": "CSS", ".scss": "SCSS",
    ".sass": "Sass", ".less": "Less",
    ".java": "Java", ".kt": "Kotlin", ".kts": "Kotlin", ".scala": "Scala", ".groovy": "Groovy", ".gradle": "Groovy",
    ".clj": "Clojure", ".cljs": "Clojure", ".cljc": "Clojure",
    ".c": "C", ".h": "C", ".cc": "C++", ".cpp": "C++", ".cxx": "C++", ".hh": "C++", ".hpp": "C++", ".hxx": "C++",
    ".cu": "CUDA", ".cuh": "CUDA", ".m": "Objective-C", ".mm": "Objective-C++", ".cs": "C#", ".fs": "F#",
    ".go": "Go", ".rs": "Rust", ".swift": "Swift", ".zig": "Zig", ".nim": "Nim", ".d": "D",
    ".rb": "Ruby", ".php": "PHP", ".pl": "Perl", ".pm": "Perl", ".lua": "Lua", ".r": "R", ".jl": "Julia",
    ".dart": "Dart", ".ex": "Elixir", ".exs": "Elixir", ".erl": "Erlang", ".hrl": "Erlang",
    ".hs": "Haskell", ".ml": "OCaml", ".mli": "OCaml", ".elm": "Elm",
    ".sh": "Shell", ".bash": "Shell", ".zsh": "Shell", ".fish": "Shell", ".ps1": "PowerShell",
    ".sql": "SQL", ".proto": "Protocol Buffers", ".graphql": "GraphQL", ".gql": "GraphQL",
    ".tf": "HCL", ".hcl": "HCL", ".cmake": "CMake", ".mk": "Makefile",
    ".yaml": "YAML", ".yml": "YAML", ".toml": "TOML",
    ".sol": "Solidity", ".v": "Verilog", ".sv": "SystemVerilog", ".vhd": "VHDL", ".f90": "Fortran",
}  # fmt: skip

LANGUAGE_BY_FILENAME: dict[str, str] = {
    "makefile": "Makefile", "gnumakefile": "Makefile", "cmakelists.txt": "CMake",
    "dockerfile": "Dockerfile", "containerfile": "Dockerfile", "jenkinsfile": "Groovy",
    "rakefile": "Ruby", "gemfile": "Ruby", "vagrantfile": "Ruby", "justfile": "Just",
}  # fmt: skip

JUNK_DIRECTORIES: frozenset[str] = frozenset({
    ".git", ".hg", ".svn", "__pycache__", "node_modules", "bower_components", ".venv", "venv",
    ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".idea", ".vscode",
    "build", "dist", "target", "out", ".next", ".nuxt", ".gradle", ".eggs", "site-packages", "vendor",
    "third_party", "Pods", "DerivedData", ".terraform", "coverage", "htmlcov",
})  # fmt: skip
"""Directories skipped when a path component equals one of these (or ends in `.egg-info` / `.xcodeproj` …)."""

JUNK_DIRECTORY_SUFFIXES: tuple[str, ...] = (".egg-info", ".xcodeproj", ".xcworkspace", ".dist-info")

LOCK_FILES: frozenset[str] = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "cargo.lock",
    "poetry.lock", "pipfile.lock", "uv.lock", "pdm.lock", "composer.lock", "gemfile.lock", "go.sum",
    "packages.lock.json", "podfile.lock", "mix.lock", "flake.lock", "pubspec.lock",
})  # fmt: skip


def is_junk_path(path: str) -> bool:
    """True if a directory component of the repo-relative POSIX `path` is a junk directory."""
    directories = PurePosixPath(path).parts[:-1]
    return any(part in JUNK_DIRECTORIES or part.endswith(JUNK_DIRECTORY_SUFFIXES) for part in directories)


def language_of(path: str) -> str | None:
    """The language of a file from its name or extension, or None if it is not a code file we know."""
    name = PurePosixPath(path).name.lower()
    if name in LANGUAGE_BY_FILENAME:
        return LANGUAGE_BY_FILENAME[name]
    if name.startswith("dockerfile."):
        return "Dockerfile"
    return LANGUAGE_BY_EXTENSION.get(PurePosixPath(name).suffix)


def is_lock_file(path: str) -> bool:
    """True for dependency lock files (generated, never worth training on)."""
    name = PurePosixPath(path).name.lower()
    return name in LOCK_FILES or name.endswith(".lock")
