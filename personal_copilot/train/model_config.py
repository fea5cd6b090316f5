"""A model's `config.json` without its weights, for sizing it (`pcopilot estimate`): a `scratch:` preset, a local
folder (a model, a run, an adapter's base) or `base`, else the configs bundled with the package (`bundled_configs/`,
the models the docs recommend, each with its source in `index.json`), the Hugging Face cache, and only then the Hub,
which fails at once with one line when it cannot be reached instead of retrying for half a minute."""

from __future__ import annotations

import json
import os
import socket
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from personal_copilot.errors import PcopilotError

BUNDLED_CONFIGS = Path(__file__).parent / "bundled_configs"
"""`<owner>/<name>/config.json` per bundled model; `index.json` says where each came from."""
HUB_PROBE_SECONDS = 3.0
"""How long to wait for a TCP connection to the Hub before calling it unreachable."""


@cache
def bundled_index() -> dict[str, dict[str, Any]]:
    """Hub id -> its entry in `bundled_configs/index.json` (config path, source URL, revision, published size)."""
    return json.loads((BUNDLED_CONFIGS / "index.json").read_text(encoding="utf-8"))


def bundled_config_dir(hub_id: str) -> Path | None:
    """The bundled folder holding `hub_id`'s config.json (hub ids match without regard to case), else None."""
    for known in bundled_index():
        if known.lower() == hub_id.lower():
            return BUNDLED_CONFIGS / known
    return None


def load_model_config(model: str, scratch_vocab_size: int = 8192, max_positions: int = 2048) -> Any:
    """The transformers config `model` names: a `scratch:` preset (with a tokenizer of `scratch_vocab_size` entries),
    a folder / run / adapter / `base`, a bundled hub id, a cached one, or one fetched from the Hub.

    Raises:
        PcopilotError: a path that does not exist or holds no config, or a hub id that is neither bundled nor cached
            while the Hub cannot be reached.
    """
    from personal_copilot.model_ref import resolve_model_ref
    from personal_copilot.modeling import is_scratch, scratch_config

    if is_scratch(model):
        return scratch_config(model, scratch_vocab_size, max_positions, {})
    bundled = None if Path(model).expanduser().is_dir() else bundled_config_dir(model)
    if bundled is not None:
        return _read_config(str(bundled), model)
    ref = resolve_model_ref(model)
    if Path(ref.base).is_dir():
        return _read_config(ref.base, model)
    bundled = bundled_config_dir(ref.base)  # an adapter folder whose base is a hub id
    return _read_config(str(bundled), model) if bundled is not None else _hub_config(ref.base, model)


def _read_config(source: str, model: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        reason = str(error).splitlines()[0]
        raise PcopilotError(f"--model {model}: cannot read a model config from {source}: {reason}") from error


def _hub_config(hub_id: str, model: str) -> Any:
    """The config of a hub id that is not bundled: from the local cache, else from the Hub when it answers."""
    from huggingface_hub import constants, try_to_load_from_cache

    cached = try_to_load_from_cache(hub_id, "config.json")
    if isinstance(cached, str):
        return _read_config(str(Path(cached).parent), model)
    bundled = ", ".join(bundled_index())
    if _offline_mode():
        raise PcopilotError(
            f"--model {model}: {hub_id}'s config.json is neither bundled nor in the Hugging Face cache, and "
            f"HF_HUB_OFFLINE is set: give a folder holding its config.json, or one of the bundled models: {bundled}"
        )
    if not _reachable(constants.ENDPOINT):
        raise PcopilotError(
            f"--model {model}: cannot reach {constants.ENDPOINT} to read {hub_id}'s config.json (offline?): give a "
            f"folder holding its config.json, or one of the bundled models: {bundled}"
        )
    return _read_config(hub_id, model)


def _offline_mode() -> bool:
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return constants.HF_HUB_OFFLINE or any(flag.upper() in {"1", "ON", "YES", "TRUE"} for flag in flags)


def _reachable(endpoint: str) -> bool:
    """Whether a TCP connection to the endpoint's host opens within HUB_PROBE_SECONDS (a proxy is trusted to answer
    for it)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=HUB_PROBE_SECONDS):
            return True
    except OSError:
        return False
