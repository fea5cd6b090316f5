"""The names a server answers to come from the run's record (`base`, the run folder's name, a hub id's last part), and
`/v1/models` lists exactly the names requests may give, each adapter with its base as parent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from personal_copilot.configs import write_run_config
from personal_copilot.errors import PcopilotError
from personal_copilot.serve import ServeConfig
from personal_copilot.serve.app import AppSettings, create_app
from personal_copilot.serve.engine import TransformersEngine
from personal_copilot.serve.model_source import ServedNames, describe_names, resolve_model, served_names

PREFIX = "def add(a, b):\n    "


@pytest.fixture
def embedded_base(tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny Llama as the embedded base (`--model base`), as the lora_run fixture's base."""
    monkeypatch.setenv("PCOPILOT_BASE_MODEL", str(tiny_models["llama"]))
    return tiny_models["llama"]


def quickstart_like(lora_run: Path, folder: Path, base: Path) -> Path:
    """A folder laid out as `pcopilot quickstart` leaves it: its record, and the fine-tune in run/."""
    shutil.copytree(lora_run, folder / "run", ignore=shutil.ignore_patterns("checkpoint-*"))
    write_run_config(folder, "quickstart", {}, model_dir="run", base_model=str(base))
    return folder


def complete(client: TestClient, model: str | None) -> tuple[int, dict]:
    body = {"prompt": PREFIX, "max_tokens": 16, "temperature": 0} | ({"model": model} if model else {})
    response = client.post("/v1/completions", json=body)
    return response.status_code, response.json()


def test_a_copied_quickstart_run_serves_its_adapter_and_base_under_their_names(
    lora_run: Path, adapters: dict[str, Path], embedded_base: Path, tmp_path: Path
) -> None:
    copied = tmp_path / "team-copilot"
    shutil.copytree(quickstart_like(lora_run, tmp_path / "quickstart", embedded_base), copied)
    config = ServeConfig(model=str(copied), adapters=[f"b={adapters['b']}"], precision="fp32", max_new_tokens=16)
    engine = TransformersEngine.load(config)
    assert describe_names(engine.info) == (
        "team-copilot (LoRA adapter on base, the default), base (base model), b (LoRA adapter on base)"
    )

    with TestClient(create_app(engine, AppSettings())) as client:
        listed = client.get("/v1/models").json()["data"]
        assert [(m["id"], m["parent"]) for m in listed] == [("team-copilot", "base"), ("base", None), ("b", "base")]
        assert [m["name"] for m in client.get("/api/tags").json()["models"]] == ["team-copilot", "base", "b"]
        texts = {}
        for name in [None, *(m["id"] for m in listed)]:
            status, body = complete(client, name)
            assert status == 200 and body["model"] == (name or "team-copilot")
            texts[name] = body["choices"][0]["text"]
        assert texts[None] == texts["team-copilot"] != texts["base"]
        status, body = complete(client, "run")  # the model folder inside the run is not a name of its own
        assert status == 404 and "team-copilot, base, b" in body["error"]["message"]


def test_the_embedded_base_is_served_as_base(embedded_base: Path) -> None:
    engine = TransformersEngine.load(ServeConfig(model="base", precision="fp32", max_new_tokens=16))
    with TestClient(create_app(engine, AppSettings())) as client:
        listed = client.get("/v1/models").json()["data"]
        assert [(m["id"], m["parent"]) for m in listed] == [("base", None)]
        status, body = complete(client, "base")
        assert status == 200 and body["model"] == "base"


def test_names_come_from_the_record_and_name_renames_the_default(
    lora_run: Path, tiny_models: dict[str, Path], embedded_base: Path, tmp_path: Path
) -> None:
    assert served_names(resolve_model("base")) == ServedNames("base", None)
    assert served_names(resolve_model(str(embedded_base))) == ServedNames("base", None)  # its folder, given as a path
    assert served_names(resolve_model("bigcode/starcoderbase-1b")) == ServedNames("starcoderbase-1b", None)
    assert served_names(resolve_model("base"), "acme") == ServedNames("acme", None)
    assert served_names(resolve_model(str(lora_run))) == ServedNames("base", lora_run.name)
    assert served_names(resolve_model(str(lora_run)), "acme") == ServedNames("base", "acme")

    scratch_base = tmp_path / "scratch-run" / "base"  # where `train --model scratch:…` keeps its base
    shutil.copytree(tiny_models["bigcode"], scratch_base)
    assert served_names(resolve_model(str(scratch_base))) == ServedNames("scratch-run-base", None)


def test_a_run_named_like_its_base_needs_a_name(lora_run: Path, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    base = tiny_models["llama"].name
    clash = tmp_path / base
    shutil.copytree(lora_run, clash, ignore=shutil.ignore_patterns("checkpoint-*"))
    with pytest.raises(PcopilotError, match=f"both be served as '{base}'; name the adapter with --name"):
        served_names(resolve_model(str(clash)))
    assert served_names(resolve_model(str(clash)), "acme") == ServedNames(base, "acme")
