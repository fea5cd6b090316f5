"""Editor-client settings for completing code with your model: llm-vscode and Continue from
`personal_copilot.serve.editors` (where `pcopilot serve` builds them too), and Tabby's config.toml completion model,
which counts characters (the endpoint's `prompt_chars`)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from personal_copilot.export.config import EditorClient
from personal_copilot.serve import CompletionEndpoint, continue_config, llm_vscode_settings

_TABBY_KINDS = {"ollama": "ollama/completion", "openai": "openai/completion", "llama.cpp": "llama.cpp/completion"}


def _toml(value: Any) -> str:
    # JSON's string escapes are a subset of TOML's basic-string escapes.
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def tabby_config(endpoint: CompletionEndpoint) -> str:
    """The completion-model part of Tabby's ~/.tabby/config.toml."""
    http: dict[str, Any] = {
        "kind": _TABBY_KINDS[endpoint.server],
        "api_endpoint": endpoint.openai_base if endpoint.server == "openai" else endpoint.url,
    }
    if endpoint.server != "llama.cpp":
        http["model_name"] = endpoint.model
    http["prompt_template"] = endpoint.family.fim_prompt("{prefix}", "{suffix}")
    http["additional_stop_words"] = list(endpoint.family.stop)
    completion = {"max_input_length": endpoint.prompt_chars, "max_decoding_tokens": endpoint.max_tokens}
    lines = [
        f"# Tabby ~/.tabby/config.toml: code completion with {endpoint.model} (FIM family {endpoint.family.name}).",
        "[model.completion.http]",
        *(f"{key} = {_toml(value)}" for key, value in http.items()),
        "",
        "[completion]",
        *(f"{key} = {_toml(value)}" for key, value in completion.items()),
    ]
    return "\n".join(lines) + "\n"


def editor_snippet(client: EditorClient, endpoint: CompletionEndpoint) -> str:
    """The text to paste into the client's settings file."""
    if client == "llm-vscode":
        return json.dumps(llm_vscode_settings(endpoint), indent=2, ensure_ascii=False) + "\n"
    if client == "continue":
        header = f"# Continue config.yaml: autocomplete with {endpoint.model} (FIM family {endpoint.family.name}).\n"
        return header + yaml.safe_dump(continue_config(endpoint), sort_keys=False, allow_unicode=True)
    return tabby_config(endpoint)
