"""A fixture repository holding every case collect must handle, and a second one that repeats some of it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import commit_all

FAKE_SECRETS = {
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "basic_auth_credentials": "hunter2pass",
    "slack_token": "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx",
    "private_key": "MIIEowIBAAKCAQEAwzXsecretkeymaterial",
}
OUTSIDE_CONTENT = "TOP SECRET CONTENT OUTSIDE THE REPO"


def module_source(name: str, functions: int = 40, variant: str = "") -> str:
    """Plausible Python code with distinct functions (long enough for near-duplicate detection)."""
    lines = [f'"""Module {name}."""', "import math", ""]
    for i in range(functions):
        lines += [f"def {name}_step_{i}(value, scale={i + 1}):", f"    return math.sqrt(value * scale) + {i}", ""]
    return "\n".join(lines) + variant + "\n"


def notebook(cells: list[dict], language: str = "python") -> str:
    metadata = {"kernelspec": {"name": "python3", "language": language, "display_name": "Python 3"}}
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells})


GOOD_NOTEBOOK = notebook(
    [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "Some prose."]},
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": 1,
            "source": ["%matplotlib inline\n", "import numpy as np\n", "x = np.arange(3)"],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["OUTPUT TEXT\n"]}],
        },
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": 2,
            "source": "!pip install foo\nprint(x)",
            "outputs": [],
        },
        {"cell_type": "code", "metadata": {}, "execution_count": 3, "source": [], "outputs": []},
    ]
)

SECRETS_FILE = f'''"""Settings with secrets that must never reach the dataset."""
AWS_KEY = "{FAKE_SECRETS["aws_access_key"]}"
GITHUB = "{FAKE_SECRETS["github_token"]}"
DATABASE_URL = "postgresql://admin:{FAKE_SECRETS["basic_auth_credentials"]}@db.internal:5432/app"
SLACK = "{FAKE_SECRETS["slack_token"]}"
KEY = """-----BEGIN RSA PRIVATE KEY-----
{FAKE_SECRETS["private_key"]}
-----END RSA PRIVATE KEY-----"""


def connect():
    return DATABASE_URL
'''

# What each file of the fixture repository becomes: a language (kept) or a drop reason.
EXPECTED_KEPT = {
    "src/app.py": "Python",
    "src/util.js": "JavaScript",
    "src/settings.py": "Python",
    "src/latin.py": "Python",
    "src/UPPER.PY": "Python",
    "common/helpers.py": "Python",
    "analysis/good.ipynb": "Python",
    ".github/workflows/ci.yml": "YAML",
    ".github/scripts/check.py": "Python",
    ".gitlab-ci.yml": "YAML",
    "builder/make.py": "Python",
    "Makefile": "Makefile",
}
EXPECTED_DROPPED = {
    "node_modules/lib/index.js": "junk_dir",
    "pkg/__pycache__/mod.py": "junk_dir",
    "mylib.egg-info/setup.py": "junk_dir",
    "link_outside.py": "symlink",
    "link_inside.py": "symlink",
    "linked_dir": "symlink",
    "src/binary.py": "binary",
    "src/bundle.js": "minified",
    "static/app.min.js": "minified",
    "analysis/bad.ipynb": "bad_notebook",
    "analysis/empty.ipynb": "empty",
    "proto/api_pb2.py": "generated",
    "gen/client.go": "generated",
    "package-lock.json": "lock_file",
    "README.md": "not_code",
    "logo.png": "not_code",
    "src/big.py": "too_large",
    "src/empty.py": "empty",
    "src/garbage.py": "binary",
}
MAX_FILE_BYTES = 20_000


@pytest.fixture
def outside_file(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.py"
    path.parent.mkdir(parents=True)
    path.write_text(f'TOKEN = "{OUTSIDE_CONTENT}"\n')
    return path


@pytest.fixture
def every_case_repo(make_repo: Callable[..., Path], outside_file: Path) -> Path:
    """A git repository with one file for every filter and drop reason (see EXPECTED_KEPT / EXPECTED_DROPPED)."""
    files: dict[str, str | bytes] = {
        "src/app.py": module_source("app"),
        "src/util.js": "export function add(a, b) {\n  return a + b;\n}\n",
        "src/settings.py": SECRETS_FILE,
        "src/latin.py": "# Copyright café crème\nNAME = 'naïve'\n".encode("latin-1"),
        "src/UPPER.PY": "print('upper case extension')\n",
        "common/helpers.py": module_source("helpers"),
        "analysis/good.ipynb": GOOD_NOTEBOOK,
        "analysis/bad.ipynb": '{"cells": [ this is not json',
        "analysis/empty.ipynb": notebook([{"cell_type": "markdown", "metadata": {}, "source": "only prose"}]),
        ".github/workflows/ci.yml": "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n",
        ".github/scripts/check.py": "import sys\n\nsys.exit(0)\n",
        ".gitlab-ci.yml": "test:\n  script: make test\n",
        "builder/make.py": "def build():\n    return 'built'\n",
        "Makefile": "test:\n\tpytest\n",
        "node_modules/lib/index.js": "module.exports = 1;\n",
        "pkg/__pycache__/mod.py": "x = 1\n",
        "mylib.egg-info/setup.py": "x = 1\n",
        "src/binary.py": b"\x7fELF\x02\x01\x01\x00\x00\x00binary\x00payload",
        "src/bundle.js": "var a=1;" + ";".join(f"function f{i}(x){{return x+{i}}}" for i in range(200)) + "\n",
        "static/app.min.js": "var a = 1;\n",
        "proto/api_pb2.py": "# Generated by the protocol buffer compiler.\nX = 1\n",
        "gen/client.go": "// Code generated by mockgen. DO NOT EDIT.\npackage gen\n",
        "package-lock.json": '{"lockfileVersion": 3}\n',
        "README.md": "# Readme\n",
        "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "src/big.py": "x = 1\n" * (MAX_FILE_BYTES // 6 + 10),
        "src/empty.py": "   \n\n",
        "src/garbage.py": bytes(range(1, 32)) * 20,
    }
    root = make_repo("every-case", files, commit=False)
    os.symlink(outside_file, root / "link_outside.py")
    os.symlink("src/app.py", root / "link_inside.py")
    os.symlink(outside_file.parent, root / "linked_dir")
    commit_all(root, "every case")
    return root


@pytest.fixture
def second_repo(make_repo: Callable[..., Path]) -> Path:
    """Repeats `common/helpers.py` exactly and `src/app.py` with one line changed (a near duplicate)."""
    near = module_source("app").replace("return math.sqrt(value * scale) + 7", "return math.sqrt(value * scale) + 8")
    return make_repo(
        "second",
        {
            "common/helpers.py": module_source("helpers").replace("\n", "  \r\n"),  # same after normalisation
            "lib/near_app.py": near,
            "lib/own.py": module_source("own"),
        },
    )
