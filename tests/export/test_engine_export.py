"""`pcopilot export vllm`: the engine's exact command (every flag checked against vLLM's documented arguments), a
compose file that validates, and the sizing rules (LoRA rank, tensor-parallel size). `export llamacpp-server` is
tested with the server it starts, in test_llamacpp_engine.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from personal_copilot.errors import PcopilotError
from personal_copilot.export import VllmConfig, run_export_vllm
from personal_copilot.export.engine import (
    ENGINE_PORT,
    LoraModule,
    max_lora_rank,
    read_lora_module,
    tensor_parallel_size,
)

VLLM_FLAGS = Path(__file__).with_name("vllm_serve_flags.txt")


def documented_vllm_flags() -> set[str]:
    lines = VLLM_FLAGS.read_text().splitlines()
    return {line.strip() for line in lines if line.startswith("--")}


def compose_command() -> list[str] | None:
    """`docker compose` or `docker-compose`, whichever validates files here (None: neither is installed)."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) and subprocess.run([*command, "version"], capture_output=True).returncode == 0:
            return command
    return None


def check_compose(path: Path) -> dict:
    """The compose file as `docker compose config` resolves it (with docker's compose here), else after a structural
    check of what compose requires of the keys used."""
    command = compose_command()
    env = {"PATH": "/usr/bin:/usr/local/bin:/bin", "PCOPILOT_API_KEY": "k", "HOME": str(path.parent)}
    if command is not None:
        done = subprocess.run([*command, "-f", str(path), "config"], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return yaml.safe_load(done.stdout)
    document = yaml.safe_load(path.read_text())
    assert set(document) == {"services"}
    for name, service in document["services"].items():
        assert {"image", "build"} & set(service), name
        assert all(isinstance(arg, str) for arg in service["command"]), name
        assert all(len(volume.split(":")) in (2, 3) for volume in service["volumes"]), name
        for device in service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", []):
            assert device["driver"] == "nvidia" and isinstance(device["count"], int) and device["capabilities"]
    assert document["services"]["front"]["depends_on"] == ["engine"]
    return document


def test_adapters_flag_takes_several_values() -> None:
    from personal_copilot.cli import parse_config

    config = parse_config("export vllm", ["--model", "m", "--output", "o", "--adapters", "a=x", "b=y"])
    assert {name: str(path) for name, path in config.adapter_paths().items()} == {"a": "x", "b": "y"}


def test_max_lora_rank_is_the_smallest_rank_vllm_takes_that_holds_every_adapter() -> None:
    modules = [LoraModule("a", Path("a"), 8), LoraModule("b", Path("b"), 40)]
    assert max_lora_rank(modules) == 64
    assert max_lora_rank(modules[:1]) == 8
    with pytest.raises(PcopilotError, match="ranks up to 512"):
        max_lora_rank([LoraModule("c", Path("c"), 1024)])


def test_tensor_parallel_size_is_the_fewest_gpus_that_hold_the_weights_and_a_kv_cache() -> None:
    assert tensor_parallel_size(7_000_000_000, 80, 32) == 1  # 14 GB of bf16 weights, 36 GB allowed per GPU
    assert tensor_parallel_size(34_000_000_000, 80, 64) == 2  # 68 GB
    assert tensor_parallel_size(70_000_000_000, 80, 64) == 4  # 140 GB
    with pytest.raises(PcopilotError, match="do not fit 8 GPUs"):  # 6 heads: only 1 and 2 GPUs divide them
        tensor_parallel_size(70_000_000_000, 80, 6)
    with pytest.raises(PcopilotError, match="do not fit 8 GPUs"):
        tensor_parallel_size(1_000_000_000_000, 80, 64)


def test_dora_adapters_are_refused_with_the_merge_command(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "use_dora": True, "r": 8}))
    with pytest.raises(PcopilotError, match="pcopilot adapters merge"):
        read_lora_module("d", tmp_path)


@pytest.mark.slow
def test_export_vllm_writes_the_command_compose_file_and_readme(lora_run: Path, tmp_path: Path) -> None:
    from personal_copilot.configs import read_run_record

    chat = tmp_path / "chat-adapter"  # a second adapter of the same base: the run's own, under another name
    chat.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(lora_run / name, chat / name)
    output = tmp_path / "deploy"
    report = run_export_vllm(VllmConfig(model=str(lora_run), adapters=[f"chat={chat}"], output=output))

    base = read_run_record(lora_run).base_model
    rank = json.loads((lora_run / "adapter_config.json").read_text())["r"]
    expected_rank = max_lora_rank([LoraModule("run", lora_run, rank)])
    assert report.engine_command == [
        "vllm", "serve", str(Path(base).resolve()), "--served-model-name", Path(base).name,
        "--host", "0.0.0.0", "--port", str(ENGINE_PORT), "--tensor-parallel-size", "1",
        "--enable-lora", "--max-loras", "2", "--max-lora-rank", str(expected_rank),
        "--lora-modules", f"{lora_run.name}={lora_run.resolve()}", f"chat={chat.resolve()}",
    ]  # fmt: skip
    assert report.front_command[:6] == [
        "pcopilot",
        "serve",
        "--model",
        str(lora_run.resolve()),
        "--engine",
        "http://engine:8000",
    ]
    assert report.front_command[-2:] == ["--engine_models", "chat=chat"]
    assert sorted(p.name for p in output.iterdir()) == sorted(
        ["vllm_serve.sh", "docker-compose.yml", "Dockerfile", "README.md", "pcopilot_config.yaml", "report.json"]
    )
    script = (output / "vllm_serve.sh").read_text()
    assert "exec vllm serve" in script and "--lora-modules" in script
    assert "--tensor-parallel-size 1" in (output / "README.md").read_text()

    compose = check_compose(output / "docker-compose.yml")
    engine, front = compose["services"]["engine"], compose["services"]["front"]
    assert engine["entrypoint"] == ["vllm", "serve"] and engine["command"] == report.engine_command[2:]
    assert front["command"] == report.front_command[1:]
    assert engine["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 1


@pytest.mark.slow
def test_every_flag_export_vllm_writes_is_a_documented_vllm_argument(lora_run: Path, tmp_path: Path) -> None:
    report = run_export_vllm(VllmConfig(model=str(lora_run), output=tmp_path, max_model_len=256))
    flags = {arg for arg in report.engine_command if arg.startswith("--")}
    assert {"--enable-lora", "--lora-modules", "--max-lora-rank", "--tensor-parallel-size", "--max-model-len"} <= flags
    assert flags <= documented_vllm_flags(), flags - documented_vllm_flags()
