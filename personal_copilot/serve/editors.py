"""Editor settings for a served model: llm-vscode (`settings.json`, backend `tgi` or `openai`) and Continue
(`config.yaml`, an autocomplete model through the Ollama provider, which asks the server for the FIM template)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from personal_copilot.serve.auth import API_KEY_ENV
from personal_copilot.serve.generation import ModelInfo

LLM_VSCODE_MAX_NEW_TOKENS = 60


def _tokenizer_setting(tokenizer: str) -> dict[str, str]:
    """How llm-ls finds the tokenizer to count the context window in tokens (without one it counts characters)."""
    local = Path(tokenizer) / "tokenizer.json"
    return {"path": str(local.resolve())} if local.is_file() else {"repository": tokenizer}


def llm_vscode_settings(info: ModelInfo, url: str, backend: Literal["tgi", "openai"] = "tgi") -> dict[str, Any]:
    """llm-vscode's `settings.json` entries; llm-ls appends /generate (tgi) or /v1/completions (openai) to the URL.
    The API key, if the server has one, is set with the `Llm: Login` command."""
    fim = info.fim
    if backend == "tgi":
        body: dict[str, Any] = {"parameters": {"max_new_tokens": LLM_VSCODE_MAX_NEW_TOKENS, "temperature": 0.2}}
        body["parameters"]["top_p"] = 0.95
    else:
        body = {"max_tokens": LLM_VSCODE_MAX_NEW_TOKENS, "temperature": 0.2, "top_p": 0.95}
    settings: dict[str, Any] = {
        "llm.backend": backend,
        "llm.url": url,
        "llm.modelId": info.name,
        "llm.fillInTheMiddle.enabled": fim is not None,
    }
    if fim is not None:
        settings |= {
            "llm.fillInTheMiddle.prefix": fim.prefix,
            "llm.fillInTheMiddle.middle": fim.middle,
            "llm.fillInTheMiddle.suffix": fim.suffix,
            "llm.tokensToClear": list(fim.stop),
        }
    return settings | {
        "llm.contextWindow": info.max_input_tokens,
        "llm.tokenizer": _tokenizer_setting(info.tokenizer),
        "llm.requestBody": body,
    }


def continue_config(info: ModelInfo, url: str, api_key: bool = False) -> dict[str, Any]:
    """Continue's `config.yaml` with the served model as its autocomplete model (and chat model when it has a chat
    template). The Ollama provider reads the FIM template from /api/show, so the model's name does not matter."""
    model: dict[str, Any] = {
        "name": f"{info.name} (pcopilot)",
        "provider": "ollama",
        "model": info.name,
        "apiBase": url,
        "roles": ["autocomplete", "chat"] if info.chat else ["autocomplete"],
        "defaultCompletionOptions": {"contextLength": info.max_input_tokens},
    }
    if api_key:
        model["apiKey"] = f"${{{{ secrets.{API_KEY_ENV} }}}}"
    return {"name": "personal-copilot", "version": "1.0.0", "schema": "v1", "models": [model]}


def editor_instructions(info: ModelInfo, url: str, api_key: bool = False) -> str:
    """The text `pcopilot serve` prints at start: both editors' settings for this model and URL."""
    settings = json.dumps(llm_vscode_settings(info, url), indent=2, ensure_ascii=False)
    config = yaml.safe_dump(continue_config(info, url, api_key), sort_keys=False, allow_unicode=True)
    key_note = "; set the API key with the `Llm: Login` command" if api_key else ""
    lines = [
        f"llm-vscode (settings.json; backend openai also works, at the same url{key_note}):",
        settings,
        "",
        "Continue (~/.continue/config.yaml):",
        config.rstrip(),
    ]
    return "\n".join(lines)
