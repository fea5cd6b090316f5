"""Editor settings for a served model, built in one place for `pcopilot serve` (which prints them) and `pcopilot export
editor`: llm-vscode's settings.json keys (llm-ls underneath) and Continue's config.yaml model entry. Each carries the
family's FIM prompt in the client's template syntax, its stop tokens and a prompt budget.

Budgets: Continue counts tokens, so it gets the context window as is. llm-ls counts tokens when it is given the
tokenizer (a local tokenizer.json or a hub repository), else characters: then it gets (context window - max tokens) x
CHARS_PER_TOKEN characters (code tokenizers average 3.5-4 characters per token; 3 keeps the prompt inside the window).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from personal_copilot.dataset import ModelFamily, get_family
from personal_copilot.serve.auth import API_KEY_ENV
from personal_copilot.serve.generation import ModelInfo

ServerApi = Literal["ollama", "openai", "tgi", "llama.cpp"]
CHARS_PER_TOKEN = 3
TOP_P = 0.95
LLM_VSCODE_MAX_NEW_TOKENS = 60
_LLM_LS_BACKENDS = {"ollama": "ollama", "openai": "openai", "tgi": "tgi", "llama.cpp": "openai"}
_CONTINUE_PROVIDERS = {"ollama": "ollama", "openai": "openai", "tgi": "huggingface-tgi", "llama.cpp": "llama.cpp"}


@dataclass(frozen=True)
class CompletionEndpoint:
    """A served model and how to ask it for completions."""

    family: ModelFamily | None
    """Its FIM family (None: a model without FIM tokens, which completes left to right only)."""
    url: str
    model: str
    server: ServerApi
    context_window: int
    max_tokens: int
    temperature: float
    tokenizer: str | None = None
    """Where llm-ls can read the tokenizer to count tokens (a model folder or hub id); None: it counts characters."""
    chat: bool = False
    """The model has a chat template (Continue may use it as its chat model too)."""
    api_key: bool = False
    """The server wants an API key (Continue reads it from its secrets)."""

    @property
    def prompt_chars(self) -> int:
        """The prompt budget in characters, for clients that count characters."""
        return (self.context_window - self.max_tokens) * CHARS_PER_TOKEN

    @property
    def openai_base(self) -> str:
        """The URL with the `/v1` that OpenAI-style clients expect in their base URL."""
        url = self.url.rstrip("/")
        return url if url.endswith("/v1") else url + "/v1"

    @property
    def stops(self) -> list[str]:
        return list(self.family.stop) if self.family else []


def fim_parts(family: ModelFamily) -> tuple[str, str, str]:
    """The text before the prefix, between prefix and suffix, and after the suffix of the family's PSM prompt (what
    llm-ls calls the FIM prefix, suffix and middle strings; CodeLlama's carry its spaces)."""
    before, rest = family.fim_prompt("\x00", "\x01").split("\x00")
    between, after = rest.split("\x01")
    return before, between, after


def _sampling(endpoint: CompletionEndpoint) -> dict[str, Any]:
    return {"temperature": endpoint.temperature, "top_p": TOP_P} if endpoint.temperature > 0 else {"temperature": 0}


def _tokenizer_setting(tokenizer: str) -> dict[str, str]:
    """How llm-ls finds the tokenizer: a local tokenizer.json, else a hub repository."""
    local = Path(tokenizer) / "tokenizer.json"
    return {"path": str(local.resolve())} if local.is_file() else {"repository": tokenizer}


def llm_vscode_settings(endpoint: CompletionEndpoint) -> dict[str, Any]:
    """VS Code settings.json keys of llm-vscode 0.2 (its `llm.requestBody` is merged into every request body). The
    API key, if the server has one, is set with the `Llm: Login` command."""
    stops = endpoint.stops
    if endpoint.server == "ollama":
        options = {"num_predict": endpoint.max_tokens, **_sampling(endpoint), "stop": stops}
        body: dict[str, Any] = {"raw": True, "options": options}
    elif endpoint.server == "tgi":
        sampling = {"do_sample": True, **_sampling(endpoint)} if endpoint.temperature > 0 else {"do_sample": False}
        body = {"parameters": {"max_new_tokens": endpoint.max_tokens, **sampling, "stop": stops}}
    else:
        body = {"max_tokens": endpoint.max_tokens, **_sampling(endpoint), "stop": stops}
    settings: dict[str, Any] = {
        "llm.backend": _LLM_LS_BACKENDS[endpoint.server],
        "llm.url": endpoint.url,
        "llm.modelId": endpoint.model,
        "llm.fillInTheMiddle.enabled": endpoint.family is not None,
    }
    if endpoint.family is not None:
        prefix, suffix, middle = fim_parts(endpoint.family)
        settings |= {
            "llm.fillInTheMiddle.prefix": prefix,
            "llm.fillInTheMiddle.suffix": suffix,
            "llm.fillInTheMiddle.middle": middle,
            "llm.tokensToClear": stops,
        }
    if endpoint.tokenizer is None:
        settings |= {"llm.contextWindow": endpoint.prompt_chars, "llm.tokenizer": None}
    else:
        window = endpoint.context_window - endpoint.max_tokens
        settings |= {"llm.contextWindow": window, "llm.tokenizer": _tokenizer_setting(endpoint.tokenizer)}
    return settings | {"llm.requestBody": body}


def continue_config(endpoint: CompletionEndpoint) -> dict[str, Any]:
    """A Continue config.yaml (schema v1) with the model in the autocomplete role (and chat, when it has a chat
    template)."""
    model: dict[str, Any] = {
        "name": f"{endpoint.model} (autocomplete)",
        "provider": _CONTINUE_PROVIDERS[endpoint.server],
        "model": endpoint.model,
        "apiBase": endpoint.openai_base if endpoint.server == "openai" else endpoint.url,
        "roles": ["autocomplete", "chat"] if endpoint.chat else ["autocomplete"],
        "defaultCompletionOptions": {
            "contextLength": endpoint.context_window,
            "maxTokens": endpoint.max_tokens,
            "temperature": endpoint.temperature,
            "stop": endpoint.stops,
        },
    }
    if endpoint.family is not None:
        model["promptTemplates"] = {"autocomplete": endpoint.family.fim_prompt("{{{prefix}}}", "{{{suffix}}}")}
    if endpoint.server == "openai":
        model["env"] = {"useLegacyCompletionsEndpoint": True}  # FIM prompts go to /v1/completions, not chat
    if endpoint.api_key:
        model["apiKey"] = f"${{{{ secrets.{API_KEY_ENV} }}}}"
    return {"name": "personal-copilot", "version": "1.0.0", "schema": "v1", "models": [model]}


def served_endpoint(info: ModelInfo, url: str, server: ServerApi, api_key: bool = False) -> CompletionEndpoint:
    """The endpoint `pcopilot serve` offers for its model (it speaks TGI, OpenAI and Ollama at the same URL)."""
    return CompletionEndpoint(
        family=get_family(info.fim.family) if info.fim else None,
        url=url,
        model=info.name,
        server=server,
        context_window=info.max_input_tokens + LLM_VSCODE_MAX_NEW_TOKENS,
        max_tokens=LLM_VSCODE_MAX_NEW_TOKENS,
        temperature=0.2,
        tokenizer=info.tokenizer,
        chat=info.chat,
        api_key=api_key,
    )


def editor_instructions(info: ModelInfo, url: str, api_key: bool = False) -> str:
    """The text `pcopilot serve` prints at start: both editors' settings for this model and URL."""
    settings = json.dumps(llm_vscode_settings(served_endpoint(info, url, "tgi")), indent=2, ensure_ascii=False)
    continue_settings = continue_config(served_endpoint(info, url, "ollama", api_key))
    config = yaml.safe_dump(continue_settings, sort_keys=False, allow_unicode=True)
    key_note = "; set the API key with the `Llm: Login` command" if api_key else ""
    lines = [
        f"llm-vscode (settings.json; backend openai also works, at the same url{key_note}):",
        settings,
        "",
        "Continue (~/.continue/config.yaml):",
        config.rstrip(),
    ]
    return "\n".join(lines)
