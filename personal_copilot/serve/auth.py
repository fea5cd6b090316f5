"""The API key check: requests send `Authorization: Bearer KEY` (what the OpenAI SDK, huggingface_hub, llm-ls,
Continue and llama.vscode send when given a key); the key is compared in constant time."""

from __future__ import annotations

import hmac

from personal_copilot.serve.generation import RequestError

API_KEY_ENV = "PCOPILOT_API_KEY"
OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs"})
"""Paths answered without a key: the health probe, and the API's description (no model, no data)."""


def check_api_key(authorization: str | None, api_key: str | None) -> None:
    """Passes when no key is configured or the header carries it.

    Raises:
        RequestError: 401 for a missing or wrong key.
    """
    if api_key is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(given, api_key.encode()):
        reason = "wrong API key" if given else "missing API key"
        raise RequestError(f"{reason}: send the server's key as `Authorization: Bearer KEY`", status=401)
