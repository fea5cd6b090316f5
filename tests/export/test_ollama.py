"""`pcopilot export ollama`: the Modelfile read the way Ollama's parser reads it, and its template rendered the way
Go's text/template renders it, with and without a suffix, for every model family."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from personal_copilot.cli import main
from personal_copilot.configs import CONFIG_FILE, write_run_config
from personal_copilot.dataset import FAMILIES
from personal_copilot.errors import PcopilotError
from personal_copilot.export import (
    LlamaCppServerConfig,
    OllamaConfig,
    fim_metadata,
    ollama_template,
    run_export_llamacpp_server,
    run_export_ollama,
)
from tests.export.ggufs import STARCODER_VOCAB, write_gguf

# Ollama's Modelfile instructions and the types of the PARAMETER names used here (ollama/api/types.go Options).
INSTRUCTIONS = {"FROM", "ADAPTER", "TEMPLATE", "SYSTEM", "PARAMETER", "LICENSE", "MESSAGE", "REQUIRES"}
PARAMETER_TYPES = {"stop": str, "num_ctx": int, "temperature": float, "num_predict": int, "top_k": int, "top_p": float}
_COMMAND = re.compile(r'^([A-Za-z]+)[ \t]+("""(.*?)"""|"([^"\n]*)"|([^\n]*))[ \t]*$', re.MULTILINE | re.DOTALL)


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(instruction, value) pairs as Ollama's parser reads them: `#` comment lines, an instruction word, then a
    \"\"\"multi-line\"\"\" string, a "quoted" string or the rest of the line. Anything else is an error."""
    commands, position = [], 0
    for match in _COMMAND.finditer(text):
        skipped = text[position : match.start()]
        assert all(not line.strip() or line.lstrip().startswith("#") for line in skipped.splitlines()), skipped
        instruction = match.group(1).upper()
        assert instruction in INSTRUCTIONS, instruction
        value = next(g for g in match.groups()[2:] if g is not None)
        commands.append((instruction, value))
        position = match.end()
    assert all(not line.strip() or line.lstrip().startswith("#") for line in text[position:].splitlines())
    return commands


def render_go_template(template: str, fields: dict[str, str]) -> str:
    """text/template for what Modelfile templates use: `{{ .Field }}`, `{{ if .Field }}…{{ else }}…{{ end }}`, and
    the `{{-` / `-}}` markers that trim the whitespace of the neighbouring text."""
    parts = re.split(r"({{-?\s*.*?\s*-?}})", template)
    out: list[str] = []
    active = [True]
    trim_next = False
    for part in parts:
        if not part.startswith("{{"):
            text = part.lstrip() if trim_next else part
            if all(active):
                out.append(text)
            trim_next = False
            continue
        if part.startswith("{{-") and out:
            out[-1] = out[-1].rstrip()
        trim_next = part.endswith("-}}")
        action = part.strip("{}").strip("-").strip()
        if action.startswith("if "):
            active.append(bool(fields.get(action.removeprefix("if .").strip(), "")))
        elif action == "else":
            active[-1] = not active[-1]
        elif action == "end":
            active.pop()
        elif all(active):
            out.append(fields[action.removeprefix(".")])
    assert active == [True], "unbalanced if/end"
    return "".join(out)


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=list(FAMILIES))
def test_template_fills_in_the_middle_only_when_there_is_a_suffix(family) -> None:
    template = ollama_template(family)

    assert ".Suffix" in template  # how Continue decides that an Ollama model can fill in the middle
    prefix, suffix = "def f(x):\n    ", "\n    return y\n"
    assert render_go_template(template, {"Prompt": prefix, "Suffix": suffix}) == family.fim_prompt(prefix, suffix)
    assert render_go_template(template, {"Prompt": prefix, "Suffix": ""}) == prefix


@pytest.fixture
def starcoder_gguf(tmp_path: Path) -> Path:
    vocabulary = {token: i for i, token in enumerate(STARCODER_VOCAB)}
    folder = tmp_path / "models"
    folder.mkdir()
    return write_gguf(folder / "Acme StarCoder.gguf", STARCODER_VOCAB, fim_metadata(vocabulary, FAMILIES["starcoder"]))


def test_modelfile_is_what_ollama_reads(starcoder_gguf: Path, tmp_path: Path) -> None:
    report = run_export_ollama(OllamaConfig(gguf=starcoder_gguf, output=tmp_path / "ollama"))

    text = (tmp_path / "ollama" / "Modelfile").read_text()
    commands = parse_modelfile(text)
    assert [value for instruction, value in commands if instruction == "FROM"] == [str(starcoder_gguf.resolve())]
    (template,) = (value for instruction, value in commands if instruction == "TEMPLATE")
    assert template == ollama_template(FAMILIES["starcoder"])
    parameters = [value.split(" ", 1) for instruction, value in commands if instruction == "PARAMETER"]
    for name, value in parameters:
        PARAMETER_TYPES[name](value.strip('"'))  # a value of the parameter's type
    assert [v.strip('"') for n, v in parameters if n == "stop"] == ["<|endoftext|>", "<file_sep>"]
    assert dict((n, v) for n, v in parameters if n != "stop") == {"num_ctx": "128", "temperature": "0.2"}
    assert report.name == "acme-starcoder" and report.create_command in text
    saved = yaml.safe_load((tmp_path / "ollama" / "pcopilot_config.yaml").read_text())
    assert saved["stage"] == "export ollama" and saved["family"] == "starcoder"


def test_a_gguf_inside_the_output_folder_is_referenced_relatively(starcoder_gguf: Path) -> None:
    run_export_ollama(OllamaConfig(gguf=starcoder_gguf, output=starcoder_gguf.parent, context_window=64, name="x:q8"))

    commands = parse_modelfile((starcoder_gguf.parent / "Modelfile").read_text())
    assert ("FROM", "./Acme StarCoder.gguf") in commands and ("PARAMETER", "num_ctx 64") in commands


def test_cli_and_errors(starcoder_gguf: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", "ollama", "--gguf", str(starcoder_gguf), "--output", str(tmp_path / "o")]) == 0
    assert "ollama create acme-starcoder -f" in capsys.readouterr().out

    with pytest.raises(PcopilotError, match="cannot make an Ollama model name"):
        run_export_ollama(OllamaConfig(gguf=starcoder_gguf, output=tmp_path / "o", name="***"))
    assert main(["export", "ollama", "--gguf", str(tmp_path / "none.gguf"), "--output", str(tmp_path / "o")]) == 2
    assert "no GGUF file at" in capsys.readouterr().err


def test_a_gguf_of_a_base_measured_best_in_spm_gets_spm_prompts(starcoder_gguf: Path, tmp_path: Path) -> None:
    """The record `export gguf` writes beside the GGUF names its base; a base whose record says SPM gets an SPM
    template in the Modelfile and `--spm-infill` on llama-server, unless --fim_layout says otherwise."""
    base = tmp_path / "spm-base"
    base.mkdir()
    (base / "base.json").write_text(json.dumps({"fim_layout": "spm"}))
    write_run_config(
        starcoder_gguf.parent, "export gguf", {}, filename=f"{starcoder_gguf.stem}.{CONFIG_FILE}", base_model=str(base)
    )
    family = FAMILIES["starcoder"]
    for chosen, layout in ((None, "spm"), ("psm", "psm")):
        out = tmp_path / f"ollama-{layout}"
        run_export_ollama(OllamaConfig(gguf=starcoder_gguf, output=out, fim_layout=chosen))
        (template,) = (v for i, v in parse_modelfile((out / "Modelfile").read_text()) if i == "TEMPLATE")
        rendered = render_go_template(template, {"Prompt": "a = ", "Suffix": "\nb = 2\n"})
        assert rendered == family.fim_prompt("a = ", "\nb = 2\n", layout)
        server = run_export_llamacpp_server(
            LlamaCppServerConfig(
                gguf=starcoder_gguf, model=str(base), output=tmp_path / f"llama-{layout}", fim_layout=chosen
            )
        )
        assert ("--spm-infill" in server.engine_command) == (chosen is None)
