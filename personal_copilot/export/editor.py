"""Editor-client settings for completing code with your model: llm-vscode's settings.json keys (llm-ls underneath),
Continue's config.yaml model entry, Tabby's config.toml completion model. Each carries the family's FIM prompt in
the client's template syntax, its stop tokens and a prompt budget.

Budgets: Continue counts tokens, so it gets the context window as is. llm-ls (without a tokenizer file) and Tabby
count characters, so they get (context window - max tokens) x CHARS_PER_TOKEN characters: code tokenizers average
3.5-4 characters per token, 3 keeps the prompt inside the window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from personal_copilot.dataset import ModelFamily
from personal_copilot.export.config import EditorClient, ServerApi

CHARS_PER_TOKEN = 3
TOP_P = 0.95
_LLM_LS_BACKENDS = {"ollama": "ollama", "openai": "openai", "tgi": "tgi", "llama.cpp": "openai"}
_CONTINUE_PROVIDERS = {"ollama": "ollama", "openai": "openai", "tgi": "huggingface-tgi", "llama.cpp": "llama.cpp"}
_TABBY_KINDS = {"ollama": "ollama/completion", "openai": "openai/completion", "llama.cpp": "llama.cpp/completion"}


@dataclass(frozen=True)
class CompletionEndpoint:
    """A served model and how to ask it for completions."""

    family: ModelFamily
    url: str
    model: str
    server: ServerApi
    context_window: int
    max_tokens: int
    temperature: float

    @property
    def prompt_chars(self) -> int:
        """The prompt budget in characters, for clients that count characters."""
        return (self.context_window - self.max_tokens) * CHARS_PER_TOKEN

    @property
    def openai_base(self) -> str:
        """The URL with the `/v1` that OpenAI-style clients expect in their base URL."""
        url = self.url.rstrip("/")
        return url if url.endswith("/v1") else url + "/v1"


def fim_parts(family: ModelFamily) -> tuple[str, str, str]:
    """The text before the prefix, between prefix and suffix, and after the suffix of the family's PSM prompt (what
    llm-ls calls the FIM prefix, suffix and middle strings; CodeLlama's carry its spaces)."""
    before, rest = family.fim_prompt("\x00", "\x01").split("\x00")
    between, after = rest.split("\x01")
    return before, between, after


def _sampling(endpoint: CompletionEndpoint) -> dict[str, Any]:
    return {"temperature": endpoint.temperature, "top_p": TOP_P} if endpoint.temperature > 0 else {"temperature": 0}


def llm_vscode_settings(endpoint: CompletionEndpoint) -> dict[str, Any]:
    """VS Code settings.json keys of llm-vscode 0.2 (its `llm.requestBody` is merged into every request body)."""
    stops = list(endpoint.family.stop)
    if endpoint.server == "ollama":
        options = {"num_predict": endpoint.max_tokens, **_sampling(endpoint), "stop": stops}
        body: dict[str, Any] = {"raw": True, "options": options}
    elif endpoint.server == "tgi":
        sampling = {"do_sample": True, **_sampling(endpoint)} if endpoint.temperature > 0 else {"do_sample": False}
        body = {"parameters": {"max_new_tokens": endpoint.max_tokens, **sampling, "stop": stops}}
    else:
        body = {"max_tokens": endpoint.max_tokens, **_sampling(endpoint), "stop": stops}
    prefix, suffix, middle = fim_parts(endpoint.family)
    return {
        "llm.backend": _LLM_LS_BACKENDS[endpoint.server],
        "llm.url": endpoint.url,
        "llm.modelId": endpoint.model,
        "llm.fillInTheMiddle.enabled": True,
        "llm.fillInTheMiddle.prefix": prefix,
        "llm.fillInTheMiddle.suffix": suffix,
        "llm.fillInTheMiddle.middle": middle,
        "llm.tokensToClear": stops,
        "llm.contextWindow": endpoint.prompt_chars,
        "llm.tokenizer": None,
        "llm.requestBody": body,
    }


def continue_config(endpoint: CompletionEndpoint) -> dict[str, Any]:
    """A Continue config.yaml (schema v1) with the model in the autocomplete role."""
    model: dict[str, Any] = {
        "name": f"{endpoint.model} (autocomplete)",
        "provider": _CONTINUE_PROVIDERS[endpoint.server],
        "model": endpoint.model,
        "apiBase": endpoint.openai_base if endpoint.server == "openai" else endpoint.url,
        "roles": ["autocomplete"],
        "defaultCompletionOptions": {
            "contextLength": endpoint.context_window,
            "maxTokens": endpoint.max_tokens,
            "temperature": endpoint.temperature,
            "stop": list(endpoint.family.stop),
        },
        "promptTemplates": {"autocomplete": endpoint.family.fim_prompt("{{{prefix}}}", "{{{suffix}}}")},
    }
    if endpoint.server == "openai":
        model["env"] = {"useLegacyCompletionsEndpoint": True}  # FIM prompts go to /v1/completions, not chat
    return {"name": "personal-copilot", "version": "1.0.0", "schema": "v1", "models": [model]}


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
