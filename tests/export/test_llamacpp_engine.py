"""`pcopilot serve --engine` in front of a real third-party engine that runs on a CPU: llama-cpp-python's
OpenAI-compatible server (`python -m llama_cpp.server`, one process for the module) serving the GGUF that `pcopilot
export gguf` made from the tiny LoRA run; and `pcopilot export llamacpp-server`, whose deployment it stands for."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest
from huggingface_hub import InferenceClient

from personal_copilot.export import GgufReport, LlamaCppServerConfig, run_export_llamacpp_server
from tests.export.test_engine_export import check_compose
from tests.serve.conftest import serving

pytestmark = pytest.mark.slow
PREFIX = "def add(a, b):\n    "
SUFFIX = "\n    return total\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(gguf_f16: GgufReport, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama_cpp.server on the GGUF, on a free loopback port, stopped after the module."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "log.txt"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", gguf_f16.output, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "512", "--verbose", "false"]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{url}/v1/models", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        process.kill()
        process.wait(30)


@pytest.fixture(scope="module")
def front_engine(lora_run: Path, llama_server: str):
    from personal_copilot.serve import ServeConfig
    from personal_copilot.serve.remote_engine import RemoteEngine

    config = ServeConfig(model=str(lora_run), engine=llama_server, max_new_tokens=32, max_input_tokens=256)
    return RemoteEngine.load(config)


@pytest.fixture(scope="module")
def front(front_engine) -> Iterator[str]:
    from personal_copilot.serve.app import create_app

    with serving(create_app(front_engine)) as url:
        yield url


def ask_engine_directly(engine_url: str, front_engine, **request) -> str:
    """The engine's completion of the very body the front sends it for `request` (greedy)."""
    from personal_copilot.serve import GenerationRequest

    prepared = front_engine.prepare(GenerationRequest(**request))
    body = front_engine.completion_body(prepared, stream=False, seed=None)
    answer = httpx.post(f"{engine_url}/v1/completions", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["choices"][0]["text"]


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)


def complete(url: str, **kwargs) -> str:
    return sdk(url).completions.create(model="", prompt=PREFIX, max_tokens=16, temperature=0, **kwargs).choices[0].text


def test_front_gives_what_llamacpp_gives_for_the_same_prompt(front: str, llama_server: str, front_engine) -> None:
    plain = complete(front)
    assert plain and plain == ask_engine_directly(llama_server, front_engine, prompt=PREFIX, max_new_tokens=16)
    fim = complete(front, suffix=SUFFIX)
    direct = ask_engine_directly(llama_server, front_engine, prompt=PREFIX, suffix=SUFFIX, max_new_tokens=16)
    assert direct.startswith(fim)  # the front cuts a FIM middle where it leaves the cursor's block
    stream = sdk(front).completions.create(model="", prompt=PREFIX, max_tokens=16, temperature=0, stream=True)
    assert "".join(chunk.choices[0].text for chunk in stream) == plain


def test_clients_through_the_front_over_llamacpp(front: str, front_engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    expected = complete(front, suffix=SUFFIX)
    answer = ollama.Client(host=front).generate(
        model=front_engine.info.name, prompt=PREFIX, suffix=SUFFIX, options={"temperature": 0, "num_predict": 16}
    )
    assert answer.response == expected
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the hub client refuses loopback requests offline
    hub = InferenceClient(model=front)
    assert hub.text_generation(PREFIX, max_new_tokens=16) == complete(front)
    assert "".join(hub.text_generation(PREFIX, max_new_tokens=16, stream=True)) == complete(front)


def test_export_llamacpp_server(gguf_f16: GgufReport, lora_run: Path, tmp_path: Path) -> None:
    config = LlamaCppServerConfig(gguf=Path(gguf_f16.output), model=str(lora_run), output=tmp_path, parallel=4)
    report = run_export_llamacpp_server(config)
    gguf = str(Path(gguf_f16.output).resolve())
    assert report.engine_command[:3] == ["llama-server", "-m", gguf]
    assert report.engine_command[-4:] == ["-c", str(4 * min(4096, report_context(gguf))), "--parallel", "4"]
    assert report.front_command[2:6] == ["--model", str(lora_run.resolve()), "--engine", "http://engine:8000"]
    compose = check_compose(tmp_path / "docker-compose.yml")
    assert compose["services"]["engine"]["command"] == report.engine_command[1:]
    assert f"{gguf}:{gguf}:ro" in compose["services"]["engine"]["volumes"]
    assert "exec llama-server" in (tmp_path / "llama_server.sh").read_text()


def report_context(gguf: str) -> int:
    from personal_copilot.export import read_gguf

    return read_gguf(Path(gguf)).context_length
