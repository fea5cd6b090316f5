"""`pcopilot <stage> …`: the command table and the only place that parses the command line.

Each stage is a typed config dataclass (its field docstrings are the `--help` text) and a `run_<stage>(config)`
function that returns a report. Values come from the dataclass defaults, then `--config FILE.yaml`, then flags;
an unknown key or flag is an error that names it. Only the chosen stage's modules are imported, so
`pcopilot --help` answers at once.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from typing import Any

from personal_copilot import __version__
from personal_copilot.errors import PcopilotError


@dataclass(frozen=True)
class Command:
    """One stage of the command table."""

    summary: str
    config: str
    """`module:Class` of the stage's config dataclass."""
    run: str
    """`module:function` that takes the config and returns the report."""
    positional: str | None = None
    """Name of a list field that also takes positional arguments (`pcopilot collect SOURCE...`)."""
    several: tuple[str, ...] = ()
    """List fields whose flag takes several values (`--adapters a=x b=y`), besides the list syntax `'[a=x, b=y]'`."""


COMMANDS: dict[str, Command] = {
    "collect": Command(
        summary="Repositories (folders, git URLs, github:ORG) -> a deduplicated, redacted Parquet code dataset.",
        config="personal_copilot.collect.config:CollectConfig",
        run="personal_copilot.collect.run:run_collect",
        positional="sources",
    ),
    "tokenizer": Command(
        summary="Train a byte-level BPE tokenizer with a model family's FIM and end-of-text tokens on a dataset.",
        config="personal_copilot.dataset.config:TokenizerConfig",
        run="personal_copilot.dataset.run:run_tokenizer",
    ),
    "dataset": Command(
        summary="Write FIM-transformed, packed training examples as JSON lines, to look at before training.",
        config="personal_copilot.dataset.config:DatasetConfig",
        run="personal_copilot.dataset.run:run_dataset",
    ),
    "train": Command(
        summary="Fine-tune a code model (LoRA, QLoRA or full) with fill-in-the-middle or on conversations.",
        config="personal_copilot.train.config:TrainConfig",
        run="personal_copilot.train.run:run_train",
    ),
    "estimate": Command(
        summary="GPU memory, fit, time and cost of fine-tuning a model, from its config alone (no weights).",
        config="personal_copilot.train.estimate_config:EstimateConfig",
        run="personal_copilot.train.estimate:run_estimate",
    ),
    "serve": Command(
        summary="Serve the model to editors (TGI, OpenAI with suffix, Ollama, llama.cpp); LoRA adapters per request.",
        config="personal_copilot.serve.config:ServeConfig",
        run="personal_copilot.serve.run:run_serve",
        several=("adapters",),
    ),
    "quickstart": Command(
        summary="The whole loop offline on this project's own source: the first command to run.",
        config="personal_copilot.quickstart:QuickstartConfig",
        run="personal_copilot.quickstart:run_quickstart",
    ),
}


def _load(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _top_level_help() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        f"usage: pcopilot <stage> [options]   (personal-copilot {__version__})",
        "",
        "Train, evaluate and serve your team's own code assistant on your own code.",
        "",
        "stages:",
        *(f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()),
        "",
        "`pcopilot <stage> --help` explains every flag of a stage. Values come from defaults, then",
        "`--config FILE.yaml`, then flags (`--group.field value` for nested settings).",
    ]
    return "\n".join(lines)


def build_parser(name: str, command: Command):
    """The jsonargparse parser of one stage, built from its config dataclass."""
    import jsonargparse

    jsonargparse.set_parsing_settings(docstring_parse_attribute_docstrings=True)
    config_class = _load(command.config)
    parser = jsonargparse.ArgumentParser(
        prog=f"pcopilot {name}", description=command.summary + "\n\n" + (config_class.__doc__ or "").strip()
    )
    parser.add_argument("--config", action=jsonargparse.ActionConfigFile, help="YAML file of settings (flags win).")
    if command.positional:
        parser.add_argument(
            f"{command.positional}_positional",
            nargs="*",
            type=str,
            metavar=command.positional.rstrip("s").upper(),
            help=f"Same as --{command.positional}; given here they replace the YAML's list.",
        )
    parser.add_class_arguments(config_class, nested_key=None)
    return parser


def _gather_several(argv: list[str], fields: tuple[str, ...]) -> list[str]:
    """`--field a b` (values up to the next flag) -> `--field '["a", "b"]'`, the list syntax the parser reads."""
    flags = {f"--{field}" for field in fields}
    gathered: list[str] = []
    i = 0
    while i < len(argv):
        flag, equals, value = argv[i].partition("=")
        if flag in flags and equals and not value.lstrip().startswith("["):
            gathered += [flag, json.dumps([value])]  # --field=a
            i += 1
            continue
        gathered.append(argv[i])
        i += 1
        if gathered[-1] in flags:
            values = []
            while i < len(argv) and not argv[i].startswith("--"):
                values.append(argv[i])
                i += 1
            single_list = len(values) == 1 and values[0].lstrip().startswith("[")
            gathered.append(values[0] if single_list else json.dumps(values))
    return gathered


def parse_config(name: str, argv: list[str]) -> Any:
    """Parses a stage's arguments into its config dataclass (exits with status 2 on a bad flag or value)."""
    command = COMMANDS[name]
    parser = build_parser(name, command)
    argv = _gather_several(argv, command.several)
    try:
        namespace = parser.instantiate(parser.parse_args(argv))  # nested groups validate here
        values = namespace.as_dict() if hasattr(namespace, "as_dict") else dict(vars(namespace))
        values.pop("config", None)
        values.pop("__path__", None)
        if command.positional:
            positional = values.pop(f"{command.positional}_positional", None)
            if positional:
                values[command.positional] = positional
        return _load(command.config)(**values)
    except (ValueError, TypeError) as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pcopilot` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_level_help())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"personal-copilot {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"pcopilot: unknown stage {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    config = parse_config(name, argv[1:])
    run = _load(COMMANDS[name].run)
    try:
        report = run(config)
    except PcopilotError as error:
        print(f"pcopilot {name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pcopilot {name}: interrupted", file=sys.stderr)
        return 130
    report.print()
    return report.exit_code
