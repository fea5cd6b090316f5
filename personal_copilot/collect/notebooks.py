"""Jupyter notebooks reduced to their code cells: no outputs, no markdown, one `# %%` marker per cell."""

from __future__ import annotations

import json

_COMMENT_PREFIX = {"python": "#", "r": "#", "julia": "#", "ruby": "#", "bash": "#", "sh": "#", "scala": "//"}


def notebook_language(notebook: dict) -> str:
    """The notebook's kernel language (lower case), `python` when it does not say."""
    metadata = notebook.get("metadata") or {}
    language = (metadata.get("kernelspec") or {}).get("language") or (metadata.get("language_info") or {}).get("name")
    return str(language or "python").lower()


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        if not all(isinstance(line, str) for line in source):
            raise ValueError("a cell source list holds a non-string")
        return "".join(source)
    if not isinstance(source, str):
        raise ValueError(f"a cell source is a {type(source).__name__}, not text")
    return source


def _strip_magics(code: str) -> str:
    """Drops IPython line magics and shell escapes (`%pip …`, `!ls`), which are not the kernel's language."""
    kept = [line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(kept).strip("\n")


def notebook_to_code(text: str) -> tuple[str, str]:
    """Returns (language, code) of a notebook: its code cells, each after a cell marker such as `# %%`.

    Raises:
        ValueError: the text is not a notebook (bad JSON, no cell list, malformed cells).
    """
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error}") from error
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError("no 'cells' list: not an nbformat 4 notebook")
    language = notebook_language(notebook)
    marker = f"{_COMMENT_PREFIX.get(language, '#')} %%"
    cells = []
    for cell in notebook["cells"]:
        if not isinstance(cell, dict):
            raise ValueError("a cell is not an object")
        if cell.get("cell_type") != "code":
            continue
        code = _strip_magics(_cell_source(cell))
        if code.strip():
            cells.append(f"{marker}\n{code}\n")
    return language, "\n".join(cells)
