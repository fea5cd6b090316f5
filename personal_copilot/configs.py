"""Files every stage leaves in its output directory: the resolved config (with provenance) and the report.

`pcopilot_config.yaml` holds the stage name, the resolved config and the versions of the libraries that matter, so a
later stage (or a person) can read how a directory was made. `report.json` holds the stage's report.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

import personal_copilot

CONFIG_FILE = "pcopilot_config.yaml"
REPORT_FILE = "report.json"
_TRACKED_LIBRARIES = ("torch", "transformers", "peft", "accelerate", "datasets", "pyarrow", "tokenizers")


def to_plain(value: Any) -> Any:
    """Turns dataclasses, paths and tuples into the plain dicts, strings and lists YAML and JSON hold."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def library_versions() -> dict[str, str | None]:
    """Versions of Python, personal-copilot and the ML libraries, read without importing them."""
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "personal_copilot": personal_copilot.__version__,
    }
    for name in _TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_atomic(path: Path, text: str) -> None:
    """Writes `text` to `path` so that a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_run_config(
    out_dir: Path, stage: str, config: Any, filename: str = CONFIG_FILE, extra: dict[str, Any] | None = None
) -> Path:
    """Writes `out_dir/pcopilot_config.yaml` (or `filename`): the stage, its resolved config, what the stage found
    out that later stages need (`extra`, e.g. the base model and FIM family of a training run) and library versions."""
    document = {"stage": stage, "config": to_plain(config), **to_plain(extra or {}), "versions": library_versions()}
    path = Path(out_dir) / filename
    write_atomic(path, yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def read_run_config(out_dir: Path) -> dict[str, Any]:
    """Reads the `pcopilot_config.yaml` a stage left in `out_dir`."""
    path = Path(out_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {out_dir} the output directory of a pcopilot stage?")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def write_report(out_dir: Path, report: Any, filename: str = REPORT_FILE) -> Path:
    """Writes a stage's report dataclass as `out_dir/report.json` (or `filename`)."""
    path = Path(out_dir) / filename
    write_atomic(path, json.dumps(to_plain(report), indent=2, ensure_ascii=False) + "\n")
    return path
