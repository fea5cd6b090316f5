"""`pcopilot export editor`: each client's snippet parsed as that client parses it (JSON / YAML / TOML) and validated
against a schema written from the client's own definition, and its FIM template checked to rebuild the family's
prompt."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

from personal_copilot.cli import main
from personal_copilot.dataset import FAMILIES
from personal_copilot.errors import PcopilotError
from personal_copilot.export import EditorConfig, fim_metadata, run_export_editor
from personal_copilot.serve.editors import CompletionEndpoint, fim_parts
from tests.export.ggufs import STARCODER_VOCAB, write_gguf

Strict = ConfigDict(extra="forbid")


class LlmVscodeSettings(BaseModel):
    """llm-vscode 0.2 `contributes.configuration.properties` (package.json) for the keys written."""

    model_config = Strict
    backend: Literal["huggingface", "ollama", "openai", "tgi"]
    url: StrictStr
    modelId: StrictStr
    fim_enabled: StrictBool
    fim_prefix: StrictStr
    fim_suffix: StrictStr
    fim_middle: StrictStr
    tokensToClear: list[StrictStr]
    contextWindow: StrictInt
    tokenizer: dict[str, StrictStr] | None
    requestBody: dict[str, Any]

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> LlmVscodeSettings:
        assert all(key.startswith("llm.") for key in settings)
        return cls(**{key.removeprefix("llm.").replace("fillInTheMiddle.", "fim_"): v for key, v in settings.items()})


class ContinueCompletionOptions(BaseModel):
    """Continue config-yaml `completionOptionsSchema` (zod)."""

    model_config = Strict
    contextLength: StrictInt | None = None
    maxTokens: StrictInt | None = None
    temperature: StrictFloat | StrictInt | None = None
    topP: StrictFloat | None = None
    topK: StrictInt | None = None
    stop: list[StrictStr] | None = None


class ContinueModel(BaseModel):
    """Continue config-yaml model block (`baseModelFields` + provider)."""

    model_config = Strict
    name: StrictStr
    provider: StrictStr
    model: StrictStr
    apiBase: StrictStr | None = None
    roles: list[Literal["chat", "autocomplete", "embed", "rerank", "edit", "apply", "summarize"]] | None = None
    defaultCompletionOptions: ContinueCompletionOptions | None = None
    promptTemplates: dict[Literal["chat", "edit", "apply", "autocomplete"], StrictStr] | None = None
    env: dict[StrictStr, StrictStr | StrictBool | StrictInt | StrictFloat] | None = None


class ContinueConfig(BaseModel):
    model_config = Strict
    name: StrictStr
    version: StrictStr
    schema_: Literal["v1"]
    models: list[ContinueModel]

    @classmethod
    def from_yaml(cls, document: dict[str, Any]) -> ContinueConfig:
        return cls(**{("schema_" if k == "schema" else k): v for k, v in document.items()})


class TabbyHttpModel(BaseModel):
    """Tabby `HttpModelConfig` (crates/tabby-common/src/config.rs)."""

    model_config = Strict
    kind: Literal["llama.cpp/completion", "ollama/completion", "openai/completion", "mistral/completion"]
    api_endpoint: StrictStr
    api_key: StrictStr | None = None
    model_name: StrictStr | None = None
    prompt_template: StrictStr | None = None
    additional_stop_words: list[StrictStr] | None = None


class TabbyConfig(BaseModel):
    model_config = Strict
    model: dict[Literal["completion"], dict[Literal["http"], TabbyHttpModel]]
    completion: dict[Literal["max_input_length", "max_decoding_tokens"], StrictInt]


def endpoint(server: str = "ollama", family: str = "starcoder", temperature: float = 0.2) -> CompletionEndpoint:
    return CompletionEndpoint(
        family=FAMILIES[family],
        url="http://localhost:11434",
        model="acme-starcoder",
        server=server,
        context_window=2048,
        max_tokens=64,
        temperature=temperature,
    )


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=list(FAMILIES))
def test_every_clients_fim_template_rebuilds_the_familys_prompt(family) -> None:
    prefix, suffix = "def f(x):\n    ", "\n    return y\n"
    expected = family.fim_prompt(prefix, suffix)
    fim_prefix, fim_suffix, fim_middle = fim_parts(family)
    assert fim_prefix + prefix + fim_suffix + suffix + fim_middle == expected  # how llm-ls builds the prompt

    continue_template = (
        ContinueConfig.from_yaml(yaml.safe_load(run_snippet("continue", family=family.name)))
        .models[0]
        .promptTemplates["autocomplete"]
    )
    assert continue_template.replace("{{{prefix}}}", prefix).replace("{{{suffix}}}", suffix) == expected
    tabby = TabbyConfig(**tomllib.loads(run_snippet("tabby", family=family.name))).model["completion"]["http"]
    assert tabby.prompt_template.format(prefix=prefix, suffix=suffix) == expected


def run_snippet(client: str, **overrides) -> str:
    values = {"client": client, "url": "http://localhost:11434", "model": "acme-starcoder", "family": "starcoder"}
    return run_export_editor(EditorConfig(**(values | overrides))).snippet


@pytest.mark.parametrize("server", ["ollama", "openai", "tgi", "llama.cpp"])
def test_llm_vscode_settings_match_its_schema_and_server(server: str) -> None:
    settings = LlmVscodeSettings.from_settings(json.loads(run_snippet("llm-vscode", server=server)))

    assert settings.backend == {"llama.cpp": "openai"}.get(server, server)
    assert (settings.fim_prefix, settings.fim_suffix, settings.fim_middle) == fim_parts(FAMILIES["starcoder"])
    assert settings.tokensToClear == ["<|endoftext|>", "<file_sep>"]
    assert settings.contextWindow == (2048 - 64) * 3  # llm-ls counts characters without a tokenizer
    body = settings.requestBody
    if server == "ollama":
        assert body == {
            "raw": True,
            "options": {"num_predict": 64, "temperature": 0.2, "top_p": 0.95, "stop": settings.tokensToClear},
        }
    elif server == "tgi":
        assert body["parameters"]["max_new_tokens"] == 64 and body["parameters"]["do_sample"] is True
    else:
        assert body["max_tokens"] == 64 and body["stop"] == settings.tokensToClear


@pytest.mark.parametrize("server", ["ollama", "openai", "tgi", "llama.cpp"])
def test_continue_config_matches_its_schema(server: str) -> None:
    text = run_snippet("continue", server=server)

    config = ContinueConfig.from_yaml(yaml.safe_load(text))
    (model,) = config.models
    assert model.provider == {"tgi": "huggingface-tgi"}.get(server, server)
    assert model.roles == ["autocomplete"] and model.model == "acme-starcoder"
    assert model.apiBase == ("http://localhost:11434/v1" if server == "openai" else "http://localhost:11434")
    options = model.defaultCompletionOptions
    assert (options.contextLength, options.maxTokens, options.stop) == (2048, 64, ["<|endoftext|>", "<file_sep>"])
    assert (model.env is not None) == (server == "openai")


@pytest.mark.parametrize("server", ["ollama", "openai", "llama.cpp"])
def test_tabby_config_matches_its_schema(server: str) -> None:
    config = TabbyConfig(**tomllib.loads(run_snippet("tabby", server=server, temperature=0)))

    http = config.model["completion"]["http"]
    assert http.kind == f"{server}/completion"
    assert (http.model_name is None) == (server == "llama.cpp")
    assert http.prompt_template.count("{prefix}") == http.prompt_template.count("{suffix}") == 1
    assert config.completion == {"max_input_length": (2048 - 64) * 3, "max_decoding_tokens": 64}


def test_family_and_context_come_from_the_gguf(tmp_path: Path, capsys) -> None:
    vocabulary = {token: i for i, token in enumerate(STARCODER_VOCAB)}
    gguf = write_gguf(tmp_path / "m.gguf", STARCODER_VOCAB, fim_metadata(vocabulary, FAMILIES["starcoder"]), 8192)
    output = tmp_path / "settings.json"

    client = ["--client", "llm-vscode", "--url", "http://h:8080", "--model", "m"]
    argv = ["export", "editor", *client, "--gguf", str(gguf)]
    assert main(argv) == 0
    settings = json.loads(capsys.readouterr().out)  # the snippet alone on stdout
    assert settings["llm.contextWindow"] == (4096 - 64) * 3  # the GGUF's 8192, capped at 4096
    assert main([*argv, "--output", str(output), "--context_window", "1024"]) == 0
    assert json.loads(output.read_text())["llm.contextWindow"] == (1024 - 64) * 3


def test_mistakes_are_user_errors() -> None:
    with pytest.raises(PcopilotError, match="--family"):
        run_snippet("continue", family=None)
    with pytest.raises(ValueError, match="Tabby has no TGI connector"):
        EditorConfig(client="tabby", url="u", model="m", server="tgi")
    with pytest.raises(ValueError, match="must be larger than --max_tokens"):
        EditorConfig(client="tabby", url="u", model="m", context_window=64, max_tokens=64)
