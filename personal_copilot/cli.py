"""`pcopilot <stage> …`: the command table and the only place that parses the command line.

Each stage is a typed config dataclass (its field docstrings are the `--help` text) and a `run_<stage>(config)`
function that returns a report. Values come from the dataclass defaults, then `--config FILE.yaml`, then flags;
an unknown key or flag is an error that names it and the nearest real flag; flags are never abbreviated (a prefix
that matches one flag today would change meaning when another is added). Only the chosen stage's modules are
imported, so `pcopilot --help` answers at once.
"""

from __future__ import annotations

import difflib
import importlib
import json
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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
    """List fields whose flag takes several space-separated values (`--adapters a=x b=y`), besides the list syntax
    `'[a=x, b=y]'`; the positional field always does."""


@dataclass(frozen=True)
class CommandGroup:
    """A stage with sub-commands (`pcopilot adapters merge …`), each an ordinary Command."""

    summary: str
    commands: dict[str, Command]


COMMANDS: dict[str, Command | CommandGroup] = {
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
    "base": CommandGroup(
        summary="The embedded default base model: show it, or pretrain it again from its recorded recipe.",
        commands={
            "show": Command(
                summary="The shipped base: recipe, training, held-out figures, sha256 of its weights checked.",
                config="personal_copilot.base.config:ShowConfig",
                run="personal_copilot.base.run:run_show",
            ),
            "build": Command(
                summary="Pretrain a base from scratch (stdlib + permissive packages, FIM), measure it, write a card.",
                config="personal_copilot.base.config:BuildConfig",
                run="personal_copilot.base.run:run_build",
            ),
        },
    ),
    "adapters": CommandGroup(
        summary="Combine, scale, re-target, merge and inspect LoRA adapters (the blog's dance of LoRAs).",
        commands={
            "combine": Command(
                summary="Several adapters -> one (PEFT add_weighted_adapter: cat, linear, svd, ties, dare_*).",
                config="personal_copilot.adapters.config:CombineConfig",
                run="personal_copilot.adapters.run:run_combine",
                positional="adapters",
            ),
            "scale": Command(
                summary="An adapter whose update is another's times a weight (e.g. 0.8 to limit forgetting).",
                config="personal_copilot.adapters.config:ScaleConfig",
                run="personal_copilot.adapters.run:run_scale",
            ),
            "transfer": Command(
                summary="Move an adapter to another base of the same shapes (starcoder -> octocoder), checked.",
                config="personal_copilot.adapters.config:TransferConfig",
                run="personal_copilot.adapters.run:run_transfer",
            ),
            "merge": Command(
                summary="Merge an adapter into its base: a standalone model with its tokenizer, checked by logits.",
                config="personal_copilot.adapters.config:MergeConfig",
                run="personal_copilot.adapters.run:run_merge",
            ),
            "inspect": Command(
                summary="Base model, rank, alpha, targets, parameters and recipe of adapter folders.",
                config="personal_copilot.adapters.config:InspectConfig",
                run="personal_copilot.adapters.run:run_inspect",
                positional="paths",
            ),
        },
    ),
    "eval": CommandGroup(
        summary="Did it learn your code, and did it forget general coding? FIM, loss and HumanEval, base vs tuned.",
        commands={
            "humaneval": Command(
                summary="HumanEval pass@k of a model (or of completions made elsewhere), run in a sandbox.",
                config="personal_copilot.evaluate.config:HumanEvalConfig",
                run="personal_copilot.evaluate.run:run_humaneval",
            ),
            "fim": Command(
                summary="Fill-in-the-middle on held-out files of your code: exact match, edit similarity, parses.",
                config="personal_copilot.evaluate.config:FimEvalConfig",
                run="personal_copilot.evaluate.run:run_fim",
            ),
            "loss": Command(
                summary="Loss and perplexity on held-out files of your code, plain and fill-in-the-middle tokens.",
                config="personal_copilot.evaluate.config:LossConfig",
                run="personal_copilot.evaluate.run:run_loss",
            ),
            "compare": Command(
                summary="Base vs tuned (vs a weighted adapter) on all of the above, one report with a chart.",
                config="personal_copilot.evaluate.config:CompareConfig",
                run="personal_copilot.evaluate.run:run_compare",
            ),
        },
    ),
    "export": CommandGroup(
        summary="GGUF (FIM ids checked), Ollama Modelfile, editor settings, vLLM or llama-server setups.",
        commands={
            "gguf": Command(
                summary="Merge the adapter and convert with llama.cpp's converter; FIM token ids checked in the GGUF.",
                config="personal_copilot.export.config:GgufConfig",
                run="personal_copilot.export.run:run_export_gguf",
            ),
            "ollama": Command(
                summary="An Ollama Modelfile for a GGUF, with a template that fills in the middle (.Suffix).",
                config="personal_copilot.export.config:OllamaConfig",
                run="personal_copilot.export.run:run_export_ollama",
            ),
            "editor": Command(
                summary="Settings for llm-vscode, Continue or Tabby: the family's FIM tokens, stops and context.",
                config="personal_copilot.export.config:EditorConfig",
                run="personal_copilot.export.run:run_export_editor",
            ),
            "vllm": Command(
                summary="The vllm serve command (LoRA modules, rank, tensor parallel), a compose file with the front.",
                config="personal_copilot.export.config:VllmConfig",
                run="personal_copilot.export.engine:run_export_vllm",
                several=("adapters",),
            ),
            "llamacpp-server": Command(
                summary="The llama-server command for a GGUF, a compose file with the pcopilot serve --engine front.",
                config="personal_copilot.export.config:LlamaCppServerConfig",
                run="personal_copilot.export.engine:run_export_llamacpp_server",
            ),
        },
    ),
    "run": Command(
        summary="A local completion (with --suffix: fill in the middle) from a GGUF through llama-cpp-python.",
        config="personal_copilot.export.config:CompletionConfig",
        run="personal_copilot.export.run:run_completion",
    ),
    "serve": Command(
        summary="Serve the model to editors (TGI, OpenAI with suffix, Ollama, llama.cpp); LoRA adapters per request.",
        config="personal_copilot.serve.config:ServeConfig",
        run="personal_copilot.serve.run:run_serve",
        several=("adapters", "engine_models"),
    ),
    "quickstart": Command(
        summary="The whole loop offline on this project's own source: the first command to run.",
        config="personal_copilot.quickstart.config:QuickstartConfig",
        run="personal_copilot.quickstart.run:run_quickstart",
    ),
}


def runnable_commands() -> dict[str, Command]:
    """Every command that runs, by its full name: `train`, `adapters merge`, …"""
    flat: dict[str, Command] = {}
    for name, entry in COMMANDS.items():
        if isinstance(entry, CommandGroup):
            flat.update({f"{name} {sub}": command for sub, command in entry.commands.items()})
        else:
            flat[name] = entry
    return flat


def _load(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _listing(entries: dict[str, Command] | dict[str, Command | CommandGroup]) -> list[str]:
    width = max(len(name) for name in entries)
    return [f"  {name:<{width}}  {entry.summary}" for name, entry in entries.items()]


def _group_help(name: str, group: CommandGroup) -> str:
    lines = [
        f"usage: pcopilot {name} <command> [options]",
        "",
        group.summary,
        "",
        "commands:",
        *_listing(group.commands),
    ]
    return "\n".join([*lines, "", f"`pcopilot {name} <command> --help` explains every flag of a command."])


def _top_level_help() -> str:
    lines = [
        f"usage: pcopilot <stage> [options]   (personal-copilot {__version__})",
        "",
        "Train, evaluate and serve your team's own code assistant on your own code.",
        "",
        "stages:",
        *_listing(COMMANDS),
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
        prog=f"pcopilot {name}",
        description=command.summary + "\n\n" + (config_class.__doc__ or "").strip(),
        allow_abbrev=False,
        exit_on_error=False,
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
    """`--field a b` (values up to the next flag) -> `--field '["a", "b"]'`, the list syntax the parser reads;
    `--field=a` and a YAML-style `--field '[a, b]'` work too."""
    flags = {f"--{field}" for field in fields}
    gathered: list[str] = []
    i = 0
    while i < len(argv):
        flag, equals, value = argv[i].partition("=")
        if flag in flags and equals and not value.lstrip().startswith("["):
            gathered += [flag, json.dumps([value])]
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
    """Parses a command's arguments (`name` as in `runnable_commands`) into its config dataclass (prints one line and
    exits with status 2 on a bad flag or value)."""
    import jsonargparse

    command = runnable_commands()[name]
    parser = build_parser(name, command)
    argv = _gather_several(argv, (*([command.positional] if command.positional else []), *command.several))
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
    except (jsonargparse.ArgumentError, ValueError, TypeError) as error:
        message = _unknown_flags_message(str(error), _flag_names(parser)) or _one_line(str(error))
        print(f"pcopilot {name}: error: {message}; `pcopilot {name} --help` lists every flag", file=sys.stderr)
        raise SystemExit(2) from None


def _flag_names(parser) -> list[str]:
    """Every flag a stage's parser takes, nested ones as `--group.field`."""
    keys = parser.get_defaults().keys()  # a jsonargparse Namespace: nested keys as `group.field`
    keys = [key for key in keys if not key.endswith("_positional")]
    return [f"--{key}" for key in keys] + ["--help"]


def _nearest_flag(given: str, flags: list[str]) -> str | None:
    """The flag a mistyped `given` most likely meant: the only flag it abbreviates, else the closest spelling."""
    extending = [flag for flag in flags if flag.startswith(given)]
    if len(extending) == 1:
        return extending[0]
    close = difflib.get_close_matches(given, flags, n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown_flags_message(error: str, flags: list[str]) -> str | None:
    """argparse's "unrecognized arguments: --max_step 10" -> "unknown flag --max_step (did you mean --max_steps?)";
    a YAML file's unknown nested key gets the same suggestion."""
    yaml_key = re.match(r"Group '([\w.]+)' does not accept option '(\w+)'", error)
    if yaml_key:
        suggestion = _nearest_flag(f"--{yaml_key[1]}.{yaml_key[2]}", flags)
        return error + (f" (did you mean {suggestion.removeprefix('--')}?)" if suggestion else "")
    if not error.startswith("unrecognized arguments:"):
        return None
    given = error.removeprefix("unrecognized arguments:").split()
    unknown = [arg.partition("=")[0] for arg in given if arg.startswith("--")]
    if not unknown:
        return f"unexpected argument {given[0]!r} (this command takes no positional arguments)"
    parts = []
    for flag in unknown:
        suggestion = _nearest_flag(flag, flags)
        parts.append(f"unknown flag {flag}" + (f" (did you mean {suggestion}?)" if suggestion else ""))
    return "; ".join(parts)


def _did_you_mean(given: str, names) -> str:
    close = difflib.get_close_matches(given, list(names), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _one_line(error: str) -> str:
    """jsonargparse's `Parser key "lora.r":\\n  Expected …` -> `--lora.r: Expected …`, on one line."""
    error = re.sub(r'Parser key "([\w.]+)":', r"--\1:", error)
    required = re.match(r"the following arguments are required: (.*)", error)
    if required:
        error = "missing required " + ", ".join(f"--{name.strip()}" for name in required[1].split(","))
    return " ".join(error.split())


@contextmanager
def _no_new_empty_output(output: Path | str | None) -> Iterator[None]:
    """A command that fails leaves no new empty folder behind: the folders of `output` (a folder, or a file's) that
    did not exist before are removed, deepest first, when they are still empty. A folder that existed before, or
    that holds anything, is never touched."""
    new: list[Path] = []
    for folder in [Path(output).absolute(), *Path(output).absolute().parents] if output else []:
        if folder.exists():
            break
        new.append(folder)
    try:
        yield
    except BaseException:
        for folder in new:
            try:
                folder.rmdir()  # only ever removes an empty folder
            except FileNotFoundError:
                continue  # never made (or a file that was never written): its parent may still be
            except OSError:
                break  # it holds something, so its parents do too
        raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pcopilot` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_level_help())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"personal-copilot {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"pcopilot: unknown stage {name!r}{_did_you_mean(name, COMMANDS)}; choose one of: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    group = COMMANDS[name]
    if isinstance(group, CommandGroup):
        if not rest or rest[0] in ("-h", "--help"):
            print(_group_help(name, group))
            return 0 if rest else 2
        if rest[0] not in group.commands:
            print(
                f"pcopilot {name}: unknown command {rest[0]!r}{_did_you_mean(rest[0], group.commands)}; "
                f"choose one of: {', '.join(group.commands)}",
                file=sys.stderr,
            )
            return 2
        name, rest = f"{name} {rest[0]}", rest[1:]
    config = parse_config(name, rest)
    run = _load(runnable_commands()[name].run)
    with _sigterm_as_interrupt() as terminated:
        try:
            with _no_new_empty_output(getattr(config, "output", None)):
                report = run(config)
        except PcopilotError as error:
            print(f"pcopilot {name}: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as interrupt:  # its message (if any) says what survived and how to continue
            print(f"pcopilot {name}: interrupted{': ' if str(interrupt) else ''}{interrupt}", file=sys.stderr)
            return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    report.print()
    return report.exit_code


@contextmanager
def _sigterm_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM (`kill`, a job scheduler, `docker stop`) stops a stage as Ctrl-C does, with the same clean message;
    yields a list that holds the signal once one came. A second SIGTERM kills at once."""
    received: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        received.append(signum)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
