"""The command line: the stage table and its groups, --help for every flag, YAML configs and their precedence, bad
flags."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from personal_copilot.cli import COMMANDS, CommandGroup, _load, main, parse_config, runnable_commands
from personal_copilot.configs import to_plain

REPO = Path(__file__).resolve().parent.parent


def flag_names(config_class: type, prefix: str = "") -> list[str]:
    names = []
    for field in dataclasses.fields(config_class):
        if dataclasses.is_dataclass(field.type if isinstance(field.type, type) else None):
            names += flag_names(field.type, f"{prefix}{field.name}.")
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if dataclasses.is_dataclass(default):
            names += flag_names(type(default), f"{prefix}{field.name}.")
        else:
            names.append(f"--{prefix}{field.name}")
    return names


def test_top_level_help_lists_every_stage(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in out


def option_help(help_text: str) -> dict[str, str]:
    """{--flag: its help text} of an argparse help page (an option's text runs until the next option or section)."""
    sections: dict[str, str] = {}
    flag = None
    for line in help_text.splitlines():
        match = re.match(r"^  (--[\w.]+)", line)
        if match:
            flag = match.group(1)
            sections[flag] = line[match.end() :]
        elif flag and line.startswith("    "):
            sections[flag] += " " + line.strip()
        else:
            flag = None
    return {flag: " ".join(text.split()) for flag, text in sections.items()}


@pytest.mark.parametrize("stage", list(runnable_commands()))
def test_stage_help_documents_every_flag(stage: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*stage.split(), "--help"])
    assert exit_info.value.code == 0
    sections = option_help(capsys.readouterr().out)
    for flag in flag_names(_load(runnable_commands()[stage].config)):
        assert flag in sections, f"{stage}: {flag} is not in --help"
        parts = re.split(r"\((?:required, )?type:", sections[flag], maxsplit=1)  # METAVAR description (type: …)
        assert len(parts) == 2 and len(parts[0].split()) >= 2, f"{stage}: {flag} has no description: {parts[0]!r}"


@pytest.mark.parametrize("stage", list(runnable_commands()))
def test_every_command_reference_imports(stage: str) -> None:
    command = runnable_commands()[stage]
    assert dataclasses.is_dataclass(_load(command.config)) and callable(_load(command.run))


@pytest.mark.parametrize("group", [name for name, entry in COMMANDS.items() if isinstance(entry, CommandGroup)])
def test_group_help_lists_its_commands_and_unknown_ones_are_errors(group: str, capsys) -> None:
    assert main([group, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: pcopilot {group} <command>")
    for name, command in COMMANDS[group].commands.items():
        assert f"  {name} " in out and command.summary in out
    assert main([group]) == 2
    assert main([group, "bogus"]) == 2
    assert f"unknown command 'bogus'; choose one of: {', '.join(COMMANDS[group].commands)}" in capsys.readouterr().err


def test_list_flag_takes_space_separated_values() -> None:
    config = parse_config("adapters combine", ["--adapters", "a=x:0.5", "y", "--output", "o", "--method", "svd"])
    assert config.adapters == ["a=x:0.5", "y"] and config.method == "svd"
    assert parse_config("adapters combine", ["a=x", "--output", "o"]).adapters == ["a=x"]
    assert parse_config("adapters combine", ["--adapters", "[a=x, b=y]", "--output", "o"]).adapters == ["a=x", "b=y"]


@pytest.mark.parametrize("args", [[], ["collect", "--help"], ["estimate", "--help"], ["eval", "compare", "--help"]])
def test_help_does_not_import_torch(args: list[str]) -> None:
    code = (
        "import sys; from personal_copilot.cli import main\n"
        f"try:\n    main({args!r} or ['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--" in result.stdout


def test_stage_packages_import_no_ml_library() -> None:
    stages = ["collect", "dataset", "train", "adapters", "evaluate", "export", "serve", "quickstart"]
    heavy = ("torch", "transformers", "peft", "datasets", "fastapi", "gguf", "llama_cpp")
    code = (
        f"import sys, importlib\nfor stage in {stages!r}:\n    importlib.import_module('personal_copilot.' + stage)\n"
        f"heavy = [m for m in {heavy!r} if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_unknown_stage_and_flag_are_errors(capsys) -> None:
    assert main(["colect"]) == 2
    assert "unknown stage 'colect'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["collect", "--bogus_flag", "1"])
    assert exit_info.value.code == 2
    assert "--bogus_flag" in capsys.readouterr().err


def test_an_abbreviated_flag_is_refused_with_the_flag_it_abbreviates(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "d", "--max_step", "10"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "pcopilot train: error: unknown flag --max_step (did you mean --max_steps?); "
        "`pcopilot train --help` lists every flag"
    ]


@pytest.mark.parametrize("stage", list(runnable_commands()))
def test_no_flag_of_any_command_takes_an_abbreviation(stage: str, capsys) -> None:
    flags = flag_names(_load(runnable_commands()[stage].config))
    abbreviations = {flag: flag[:-1] for flag in flags if flag[:-1] not in flags and len(flag) > 4}
    assert abbreviations
    with pytest.raises(SystemExit) as exit_info:  # argparse reports every unknown flag at once
        main([*stage.split(), *(arg for abbreviated in abbreviations.values() for arg in (abbreviated, "1"))])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    for flag, abbreviated in abbreviations.items():
        assert f"unknown flag {abbreviated} " in err or f"unknown flag {abbreviated};" in err, abbreviated
        if sum(other.startswith(abbreviated) for other in flags) == 1:
            assert f"unknown flag {abbreviated} (did you mean {flag}?)" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--lora.rank", "4"], "unknown flag --lora.rank (did you mean --lora.r?)"),
        (
            ["train", "--optim.learning_rat=1e-4"],
            "unknown flag --optim.learning_rat (did you mean --optim.learning_rate?)",
        ),
        (
            ["collect", "x", "--filters.max_bytes", "3"],
            "unknown flag --filters.max_bytes (did you mean --filters.max_file_bytes?)",
        ),
        (["eval", "compare", "--adaptor", "r"], "unknown flag --adaptor (did you mean --adapter?)"),
        (["train", "--zzz", "1"], "unknown flag --zzz;"),
        (["train", "stray"], "unexpected argument 'stray'"),
        (["export", "gguf", "--output", "x.gguf"], "missing required --model"),
        (["train", "--lora.r", "abc"], "--lora.r: Expected a <class 'int'>. Got value: abc"),
    ],
)
def test_a_bad_command_line_is_one_line_that_says_what_to_type(argv: list[str], expected: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and expected in err, err


def test_a_mistyped_stage_or_command_gets_a_suggestion(capsys) -> None:
    assert main(["trian"]) == 2
    assert "unknown stage 'trian' (did you mean train?)" in capsys.readouterr().err
    assert main(["eval", "comapre"]) == 2
    assert "unknown command 'comapre' (did you mean compare?)" in capsys.readouterr().err


def test_unknown_yaml_key_is_an_error_that_names_it(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sources: [a]\nfilters:\n  max_bytes: 3\n")
    with pytest.raises(SystemExit):
        parse_config("collect", ["--config", str(config)])
    assert "does not accept option 'max_bytes' (did you mean filters.max_file_bytes?)" in capsys.readouterr().err


def test_precedence_defaults_then_yaml_then_flags(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text("sources: [a, b]\nworkers: 3\nfilters:\n  max_file_bytes: 5000\n  exclude: ['*.yml']\n")

    defaults = parse_config("collect", ["x"])
    from_yaml = parse_config("collect", ["--config", str(config_file)])
    overridden = parse_config("collect", ["--config", str(config_file), "--filters.max_file_bytes", "7000", "c"])

    assert defaults.sources == ["x"] and defaults.filters.max_file_bytes == 1_000_000
    assert from_yaml.sources == ["a", "b"] and from_yaml.workers == 3 and from_yaml.filters.max_file_bytes == 5000
    assert overridden.sources == ["c"] and overridden.workers == 3
    assert overridden.filters.max_file_bytes == 7000
    assert overridden.filters.exclude == ["*.yml"]  # a flag on one nested field keeps its YAML siblings


def test_invalid_value_names_the_flag(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_config("collect", ["x", "--workers", "0"])
    assert "--workers" in capsys.readouterr().err


STAGE_CONFIGS = sorted(
    p for p in (REPO / "configs").rglob("*.yaml") if p.relative_to(REPO / "configs").parts[0] in COMMANDS
)


def command_of(header: str) -> str:
    """`# pcopilot adapters combine --config …` -> `adapters combine`."""
    return header.removeprefix("# pcopilot ").split(" --")[0]


def assert_subset(expected: object, actual: object) -> None:
    if isinstance(expected, dict):
        for key, value in expected.items():
            assert_subset(value, actual[key])
    else:
        assert expected == actual


@pytest.mark.parametrize("path", STAGE_CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_example_configs_parse(path: Path) -> None:
    stage = path.relative_to(REPO / "configs").parts[0]
    header = path.read_text().splitlines()[0]
    command = command_of(header)  # the stage, or one of its sub-commands
    assert header.startswith(f"# pcopilot {stage} ") and f"configs/{path.relative_to(REPO / 'configs')}" in header
    assert command.split()[0] == stage and command in runnable_commands()
    config = parse_config(command, ["--config", str(path)])
    assert_subset(yaml.safe_load(path.read_text()), to_plain(config))


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs(path: Path) -> None:
    header = path.read_text().splitlines()[0]
    assert header.startswith(
        f"# accelerate launch --config_file configs/accelerate/{path.name} -m personal_copilot train"
    )
    config = yaml.safe_load(path.read_text())
    assert config["distributed_type"] in {"FSDP", "DEEPSPEED", "MULTI_GPU"}
    assert config["num_processes"] >= 1


def test_collect_command_end_to_end(make_repo, tmp_path: Path, capsys) -> None:
    repo = make_repo("cli-repo", {"main.py": "def main():\n    return 42\n"})
    out = tmp_path / "out"
    status = main(["collect", str(repo), "--output", str(out), "--workers", "1", "--cache_dir", str(tmp_path / "c")])

    assert status == 0
    printed = capsys.readouterr().out
    assert "files kept" in printed and "cli-repo" in printed
    saved = yaml.safe_load((out / "pcopilot_config.yaml").read_text())
    assert saved["stage"] == "collect"
    assert saved["config"]["sources"] == [str(repo)]
    assert saved["versions"]["pyarrow"]


def test_collect_exit_status_says_a_source_failed(make_repo, tmp_path: Path, capsys) -> None:
    repo = make_repo("ok", {"main.py": "x = 1\n"})
    argv = ["collect", str(repo), str(tmp_path / "missing"), "--output", str(tmp_path / "out"), "--workers", "1"]
    assert main(argv) == 1
    assert "no such directory" in capsys.readouterr().out


def test_a_failed_command_leaves_no_new_empty_output_folder(tmp_path: Path, capsys) -> None:
    kept = tmp_path / "existing"
    kept.mkdir()
    for output in (tmp_path / "new" / "run", kept / "run"):
        argv = ["train", "--model", "scratch:tiny", "--data", str(tmp_path / "no-data"), "--output", str(output)]
        assert main(argv) == 2
        assert "no-data" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"] and list(kept.iterdir()) == []


def test_only_new_empty_folders_are_removed_after_a_failure(tmp_path: Path) -> None:
    from personal_copilot.cli import _no_new_empty_output

    output = tmp_path / "a" / "b" / "model.gguf"
    with pytest.raises(RuntimeError), _no_new_empty_output(output):
        output.parent.mkdir(parents=True)  # the file itself is never written
        raise RuntimeError("conversion failed")
    assert list(tmp_path.iterdir()) == []

    with pytest.raises(RuntimeError), _no_new_empty_output(tmp_path / "a" / "b"):
        (tmp_path / "a" / "b").mkdir(parents=True)
        (tmp_path / "a" / "b" / "converter.log").write_text("why it failed")
        raise RuntimeError("conversion failed")
    assert (tmp_path / "a" / "b" / "converter.log").read_text() == "why it failed"

    with _no_new_empty_output(tmp_path / "c"):
        (tmp_path / "c").mkdir()  # a command that succeeds keeps what it made, empty or not
    assert (tmp_path / "c").is_dir()
