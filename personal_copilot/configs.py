"""Files every stage leaves in its output directory: the resolved config (with provenance) and the report.

`pcopilot_config.yaml` holds a `RunRecord`: the stage name, the resolved config, what later stages need (base model,
FIM family, data splits …) and the versions of the libraries that matter, so a later stage (or a person) can read how
a directory was made. It is written by `write_run_config` and read by `read_run_record`, nowhere else.
`report.json` holds the stage's report.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

import personal_copilot
from personal_copilot.errors import PcopilotError

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


def current_umask() -> int:
    """The process's umask (read without changing it where /proc says it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(path: Path) -> None:
    """Gives a file or folder made by `tempfile` (0600 / 0700) the mode a plain `open` / `mkdir` would have given it,
    so that a teammate or a serving account can read what a stage wrote."""
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~current_umask())


def write_atomic(path: Path, text: str) -> None:
    """Writes `text` to `path` so that a reader sees the old file or the new one, never half of one; the file gets
    the umask's mode, like any file the user writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        honour_umask(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class EvalRows:
    """How a training run built its held-out rows, so that `eval loss` scores the rows the trainer scored."""

    fim: dict[str, Any]
    """The run's `--fim` settings (FimConfig fields)."""
    seq_len: int
    seed: int
    repo_context: bool
    eval_fraction: float


@dataclass
class RunRecord:
    """What `pcopilot_config.yaml` holds: how a folder was made and what later stages need from it. Written by every
    stage through `write_run_config`, read back only through `read_run_record`."""

    stage: str
    """The command that made the folder: `train`, `adapters merge`, `collect`, `quickstart` …"""
    config: dict[str, Any]
    """The command's resolved config."""
    base_model: str | None = None
    """The base the folder's adapter goes on, or the base a merged / fine-tuned model was made from."""
    family: str | None = None
    """The FIM family the model was trained with."""
    tokenizer: str | None = None
    """Where the tokenizer is when the folder has none of its own."""
    model_dir: str | None = None
    """Sub-folder that holds the model the run produced (a quickstart run's `run`)."""
    data_splits: list[dict[str, Any]] = field(default_factory=list)
    """The datasets a training run read and what it held out of each."""
    eval_rows: EvalRows | None = None
    """How the training run built its held-out rows."""
    trained_on_4bit_base: bool = False
    """A QLoRA run, or an adapter made from one."""
    recipe: dict[str, Any] | None = None
    """How `pcopilot adapters` made the folder from its inputs."""
    details: dict[str, Any] = field(default_factory=dict)
    """Facts for people (the models an evaluation compared, the adapter an export merged); no stage reads them."""
    versions: dict[str, str | None] = field(default_factory=dict)
    """Python, personal-copilot and ML library versions that wrote the folder."""


def check_output_owner(out_dir: Path, stage: str, filename: str = CONFIG_FILE) -> None:
    """Fails when `out_dir` already holds the record of another stage (a training run given to `collect --output`,
    a dataset given to `train --output`): writing there would replace that stage's record.

    Raises:
        PcopilotError: the folder belongs to another stage.
    """
    record = read_run_record(out_dir, filename)
    if record is not None and record.stage != stage:
        raise PcopilotError(
            f"{out_dir} is the output of `pcopilot {record.stage}`; `pcopilot {stage}` would replace its "
            f"{filename}: choose another --output"
        )


def write_run_config(out_dir: Path, stage: str, config: Any, filename: str = CONFIG_FILE, **facts: Any) -> RunRecord:
    """Writes `out_dir/pcopilot_config.yaml` (or `filename`): a `RunRecord` of `stage`, its resolved `config`, the
    record's other fields as `facts` (base_model, family, data_splits …) and library versions.

    Raises:
        PcopilotError: the folder holds another stage's record (see `check_output_owner`).
    """
    check_output_owner(Path(out_dir), stage, filename)
    record = RunRecord(stage=stage, config=to_plain(config), **facts)
    record.versions = library_versions()
    write_atomic(Path(out_dir) / filename, yaml.safe_dump(to_plain(record), sort_keys=False, allow_unicode=True))
    return record


def read_run_record(out_dir: str | Path, filename: str = CONFIG_FILE) -> RunRecord | None:
    """The record a stage left in `out_dir`; None when there is none (a folder from elsewhere).

    Raises:
        PcopilotError: the file is there but is not a record.
    """
    path = Path(out_dir).expanduser() / filename
    if not path.is_file():
        return None
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(RunRecord)}
        values = {k: v for k, v in document.items() if k in known}
        if isinstance(values.get("eval_rows"), dict):
            values["eval_rows"] = EvalRows(**values["eval_rows"])
        return RunRecord(**values)
    except (yaml.YAMLError, AttributeError, TypeError) as error:
        raise PcopilotError(f"{path} is not a pcopilot run record ({error}); move it away or remove it") from error


def write_report(out_dir: Path, report: Any, filename: str = REPORT_FILE) -> Path:
    """Writes a stage's report dataclass as `out_dir/report.json` (or `filename`)."""
    path = Path(out_dir) / filename
    write_atomic(path, json.dumps(to_plain(report), indent=2, ensure_ascii=False) + "\n")
    return path


def named_values(specs: list[str] | str, flag: str, value: str = "PATH") -> dict[str, str]:
    """`NAME=VALUE` entries of a list flag (`--adapters a=runs/a b=runs/b`) as {name: value}.

    Raises:
        ValueError: an entry without a name or a value, naming the flag and the form it takes.
    """
    named = {}
    for spec in [specs] if isinstance(specs, str) else specs:
        name, sep, given = spec.partition("=")
        if not sep or not name.strip() or not given.strip():
            raise ValueError(f"{flag} takes NAME={value} entries, got {spec!r}")
        named[name.strip()] = given.strip()
    return named
