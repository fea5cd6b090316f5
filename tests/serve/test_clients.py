"""End to end: the real engine (tiny Llama, adapters a and b) behind uvicorn on a loopback port, driven by the real
client libraries (the openai SDK, huggingface_hub's InferenceClient) and by raw HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from huggingface_hub import InferenceClient

from tests.serve.conftest import API_KEY, AUTH

PREFIX = "def add(a, b):\n    "
SUFFIX = "\n    return total\n"
MODELS = ("tiny-starcoder", "a", "b")  # the served name is the bare base; a and b are the adapters


@pytest.fixture(scope="module")
def sdk(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0)


@pytest.fixture
def hub(server: str, monkeypatch: pytest.MonkeyPatch) -> InferenceClient:
    """huggingface_hub's client for the TGI routes. Its offline mode (HF_HUB_OFFLINE=1, set for every test) refuses
    all requests, loopback ones too, so it is lifted for this client, which only talks to the local server."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return InferenceClient(model=server, token=API_KEY)


def complete(sdk: openai.OpenAI, model: str, **kwargs) -> str:
    response = sdk.completions.create(model=model, prompt=PREFIX, max_tokens=16, temperature=0, **kwargs)
    return response.choices[0].text


def test_greedy_outputs_of_base_and_adapters_differ_and_repeat(sdk: openai.OpenAI) -> None:
    first = {model: complete(sdk, model, suffix=SUFFIX) for model in MODELS}
    again = {model: complete(sdk, model, suffix=SUFFIX) for model in MODELS}
    assert first == again
    assert len(set(first.values())) == 3, first


def test_openai_completion_with_suffix_is_the_engines_fim_completion(sdk: openai.OpenAI, engine) -> None:
    from personal_copilot.serve import GenerationRequest

    response = sdk.completions.create(model="a", prompt=PREFIX, suffix=SUFFIX, max_tokens=16, temperature=0)
    assert response.object == "text_completion" and response.model == "a"
    prepared = engine.prepare(GenerationRequest(prompt=PREFIX, suffix=SUFFIX, model="a", max_new_tokens=16))
    assert response.usage.prompt_tokens == len(prepared.prompt_ids)
    (expected,) = engine.generate([prepared], lambda i, event: True)
    assert response.choices[0].text == expected.text
    assert response.choices[0].finish_reason == ("length" if expected.finish_reason == "length" else "stop")


def test_openai_streaming_adds_up_to_the_completion(sdk: openai.OpenAI) -> None:
    stream = sdk.completions.create(model="b", prompt=PREFIX, max_tokens=16, temperature=0, stream=True)
    assert "".join(chunk.choices[0].text for chunk in stream) == complete(sdk, "b")


def test_openai_chat_and_chat_streaming(sdk: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "add two numbers"}]
    reply = sdk.chat.completions.create(model="a", messages=messages, max_tokens=12, temperature=0)
    assert reply.choices[0].message.role == "assistant" and reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 12
    stream = sdk.chat.completions.create(model="a", messages=messages, max_tokens=12, temperature=0, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == reply.choices[0].message.content


def test_openai_models_and_errors(sdk: openai.OpenAI, server: str, engine) -> None:
    assert [m.id for m in sdk.models.list()] == list(MODELS)
    with pytest.raises(openai.NotFoundError, match="unknown model or adapter 'c'"):
        sdk.completions.create(model="c", prompt="x", max_tokens=2)
    with pytest.raises(openai.UnprocessableEntityError, match="max_tokens"):
        sdk.completions.create(model="a", prompt="x", max_tokens=0)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0).models.list()


def test_inference_client_text_generation_and_stream(hub: InferenceClient, sdk: openai.OpenAI) -> None:
    text = hub.text_generation(PREFIX, max_new_tokens=16, adapter_id="a")
    assert text == complete(sdk, "a")  # TGI greedy by default, OpenAI at temperature 0: the same completion
    assert "".join(hub.text_generation(PREFIX, max_new_tokens=16, adapter_id="a", stream=True)) == text
    *_, last = hub.text_generation(PREFIX, max_new_tokens=16, adapter_id="a", stream=True, details=True)
    assert last.generated_text == text and last.details.generated_tokens <= 16
    detailed = hub.text_generation(PREFIX, max_new_tokens=16, details=True)
    assert detailed.details.finish_reason in ("length", "eos_token", "stop_sequence")
    default = hub.text_generation(PREFIX, details=True)  # TGI's default of 100 tokens, capped to the server's 48
    assert default.details.generated_tokens <= 48


def test_every_protocol_gives_the_same_greedy_fim_completion(server: str, sdk: openai.OpenAI) -> None:
    expected = complete(sdk, "b", suffix=SUFFIX)
    options = {"temperature": 0, "num_predict": 16}
    ollama = httpx.post(
        f"{server}/api/generate",
        json={"model": "b", "prompt": PREFIX, "suffix": SUFFIX, "stream": False, "options": options},
        headers=AUTH,
    ).json()
    infill = httpx.post(
        f"{server}/infill",
        json={"model": "b", "input_prefix": "def add(a, b):\n", "prompt": "    ", "input_suffix": SUFFIX}
        | {"temperature": 0, "n_predict": 16},
        headers=AUTH,
    ).json()
    client_built = f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"
    tgi = httpx.post(
        f"{server}/generate",
        json={"inputs": client_built, "parameters": {"max_new_tokens": 16, "adapter_id": "b"}},
        headers=AUTH,
    ).json()
    assert ollama["response"] == infill["content"] == tgi["generated_text"] == expected


def test_raw_http_shapes_and_errors(server: str) -> None:
    body = {"inputs": PREFIX, "parameters": {"max_new_tokens": 4}}
    obj = httpx.post(f"{server}/generate", json=body, headers=AUTH)
    listed = httpx.post(f"{server}/", json=body, headers=AUTH)
    assert obj.status_code == 200 and set(obj.json()) == {"generated_text"}
    assert listed.json() == [obj.json()]
    assert httpx.post(f"{server}/generate", json=body).status_code == 401
    assert httpx.post(f"{server}/generate", json=body, headers={"Authorization": "Bearer x"}).status_code == 401
    unknown = httpx.post(f"{server}/generate", json={"inputs": "x", "parameters": {"adapter_id": "c"}}, headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["error_type"] == "not_found"
    bad = httpx.post(f"{server}/generate", json={"inputs": "x", "parameters": {"top_p": 2}}, headers=AUTH)
    assert bad.status_code == 422 and "parameters.top_p" in bad.json()["error"]
    over = {"inputs": "x", "parameters": {"max_new_tokens": 49}}
    too_many = httpx.post(f"{server}/generate", json=over, headers=AUTH)
    assert too_many.status_code == 422 and "limit of 48" in too_many.json()["error"]


def test_concurrent_requests_get_the_answers_they_get_alone(server: str, sdk: openai.OpenAI) -> None:
    alone = {model: complete(sdk, model, suffix=SUFFIX) for model in MODELS}
    answers: dict[str, str] = {}

    def ask(model: str) -> None:
        answers[model] = complete(sdk, model, suffix=SUFFIX)

    threads = [threading.Thread(target=ask, args=(model,)) for model in MODELS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == alone


def test_pcopilot_serve_command(tiny_models: dict[str, Path], adapters: dict[str, Path], tmp_path: Path) -> None:
    """The CLI: prints the editor settings for the model it serves, serves, stops on SIGINT with its report."""
    command = [sys.executable, "-m", "personal_copilot", "serve", "--model", str(tiny_models["llama"]), "--port", "0"]
    command += ["--adapters", f"a={adapters['a']}", f"b={adapters['b']}"]
    env = os.environ | {"PCOPILOT_API_KEY": API_KEY, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while '"llm.url"' not in out.read_text():
            assert time.monotonic() < deadline and process.poll() is None, err.read_text()
            time.sleep(0.1)
        url = re.search(r'"llm.url": "(http://127\.0\.0\.1:\d+)"', out.read_text()).group(1)
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200  # waits in the backlog while uvicorn starts
        body = {"inputs": "x", "parameters": {"adapter_id": "b"}}
        generated = httpx.post(f"{url}/generate", json=body, headers=AUTH)
        assert generated.status_code == 200
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    printed, logged = out.read_text(), err.read_text()
    assert process.returncode == 0, logged
    assert '"llm.fillInTheMiddle.prefix": "<fim_prefix>"' in printed and "provider: ollama" in printed
    assert "generations" in printed and "POST /generate 200 adapter=b" in logged
