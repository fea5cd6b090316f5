"""`pcopilot serve --engine URL`: the front (every route, the API key, the limits, FIM prompts built here) in front of
another server that generates. The engines here: `pcopilot serve` itself (the tiny Llama with adapters a and b,
uvicorn on a loopback port), and a stand-in engine process (tests/serve/fake_engine.py) that is slow or is killed
mid-stream. llama.cpp's server as the engine is in test_llamacpp_engine.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import ollama
import openai
import pytest
from huggingface_hub import InferenceClient

from tests.serve.conftest import API_KEY, AUTH, serving

PREFIX = "def add(a, b):\n    "
SUFFIX = "\n    return total\n"
MODELS = ("tiny-starcoder", "a", "b")
FAKE_ENGINE = Path(__file__).with_name("fake_engine.py")


def front_app(serve_config, engine_url: str, **overrides):
    """The app of `pcopilot serve --engine engine_url` for the tiny Llama with adapters a and b."""
    from personal_copilot.serve.app import AppSettings, create_app
    from personal_copilot.serve.remote_engine import RemoteEngine

    config = replace(serve_config, **{"engine": engine_url, "engine_api_key": API_KEY, **overrides})
    return create_app(RemoteEngine.load(config), AppSettings(api_key=API_KEY))


@pytest.fixture(scope="module")
def front(serve_config, server: str) -> Iterator[str]:
    """The front over `pcopilot serve` (the conftest's `server`, which wants the same API key) as its engine."""
    with serving(front_app(serve_config, server)) as url:
        yield url


@contextmanager
def fake_engine(delay: float = 0.0, token_seconds: float = 0.0) -> Iterator[tuple[subprocess.Popen, str]]:
    process = subprocess.Popen(
        [sys.executable, str(FAKE_ENGINE), "--delay", str(delay), "--token_seconds", str(token_seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(process.stdout.readline())
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(10)


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0)


def complete(url: str, model: str, **kwargs) -> str:
    response = sdk(url).completions.create(model=model, prompt=PREFIX, max_tokens=16, temperature=0, **kwargs)
    return response.choices[0].text


def test_completion_body_maps_names_sampling_and_stops(serve_config) -> None:
    """What the front sends for a request: the engine's name for the adapter, the built FIM prompt as text, the
    sampling settings (greedy: temperature 0), the request's stops and the family's."""
    from personal_copilot.serve import GenerationRequest, SamplingParams
    from personal_copilot.serve.remote_engine import RemoteEngine

    config = replace(serve_config, engine="http://127.0.0.1:9", engine_models=["a=lora-a", "extra=lora-x"])
    front = RemoteEngine.load(config)
    assert front.info.adapters == ("a", "b", "extra") and front.info.max_new_tokens == 48
    greedy = front.prepare(GenerationRequest(prompt=PREFIX, suffix=SUFFIX, model="a", stop=("\n\n",)))
    body = front.completion_body(greedy, stream=True, seed=None)
    assert body["model"] == "lora-a" and body["max_tokens"] == 48 and body["stream"] is True
    assert body["prompt"] == f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"
    assert (body["temperature"], body["top_p"]) == (0.0, 1.0) and "seed" not in body
    assert body["stop"][0] == "\n\n" and "<|endoftext|>" in body["stop"]
    sampling = SamplingParams.from_request(temperature=0.7, top_p=0.9, top_k=5, seed=3)
    sampled = front.prepare(GenerationRequest(prompt="x", model="tiny-starcoder", sampling=sampling))
    body = front.completion_body(sampled, stream=False, seed=3)
    assert body["model"] == front.info.base_name and body["prompt"] == "x"
    assert (body["temperature"], body["top_p"], body["top_k"], body["seed"]) == (0.7, 0.9, 5, 3)


def test_front_gives_the_engines_greedy_completions(front: str, server: str) -> None:
    for model in MODELS:
        assert complete(front, model, suffix=SUFFIX) == complete(server, model, suffix=SUFFIX), model
        assert complete(front, model) == complete(server, model), model
    stream = sdk(front).completions.create(model="b", prompt=PREFIX, max_tokens=16, temperature=0, stream=True)
    assert "".join(chunk.choices[0].text for chunk in stream) == complete(server, "b")
    messages = [{"role": "user", "content": "add two numbers"}]
    chats = [
        sdk(url).chat.completions.create(model="a", messages=messages, max_tokens=12, temperature=0)
        for url in (front, server)
    ]
    assert chats[0].choices[0].message.content == chats[1].choices[0].message.content


def test_every_client_through_the_front(front: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub's InferenceClient (TGI), the ollama client and llama.cpp's /infill get the FIM completion the
    openai SDK gets; the front's own limits and errors stay in each protocol's shape."""
    from huggingface_hub import constants

    expected = complete(front, "a", suffix=SUFFIX)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the hub client refuses loopback requests offline
    hub = InferenceClient(model=front, token=API_KEY)
    assert (
        hub.text_generation(f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>", max_new_tokens=16, adapter_id="a")
        == expected
    )
    client = ollama.Client(host=front, headers=AUTH)
    answer = client.generate(model="a", prompt=PREFIX, suffix=SUFFIX, options={"temperature": 0, "num_predict": 16})
    assert answer.response == expected
    streamed = client.generate(
        model="a", prompt=PREFIX, suffix=SUFFIX, stream=True, options={"temperature": 0, "num_predict": 16}
    )
    assert "".join(part.response for part in streamed) == expected
    infill = httpx.post(
        f"{front}/infill",
        headers=AUTH,
        json={
            "model": "a",
            "input_prefix": PREFIX,
            "prompt": "",
            "input_suffix": SUFFIX,
            "temperature": 0,
            "n_predict": 16,
        },
    ).json()
    assert infill["content"] == expected
    with pytest.raises(openai.NotFoundError, match="unknown model or adapter 'c'"):
        complete(front, "c")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{front}/v1", api_key="wrong", max_retries=0).models.list()
    too_many = httpx.post(
        f"{front}/generate", json={"inputs": "x", "parameters": {"max_new_tokens": 49}}, headers=AUTH
    )
    assert too_many.status_code == 422 and "limit of 48" in too_many.json()["error"]


def test_slow_engine_is_a_504_in_each_protocols_shape(serve_config) -> None:
    with fake_engine(delay=5) as (_, engine), serving(front_app(serve_config, engine, engine_timeout=0.5)) as url:
        openai_error = httpx.post(f"{url}/v1/completions", json={"prompt": "x", "max_tokens": 2}, headers=AUTH)
        assert openai_error.status_code == 504
        assert openai_error.json()["error"]["type"] == "engine_timeout"
        assert "--engine_timeout" in openai_error.json()["error"]["message"]
        tgi = httpx.post(f"{url}/generate", json={"inputs": "x", "parameters": {"max_new_tokens": 2}}, headers=AUTH)
        assert tgi.status_code == 504 and tgi.json()["error_type"] == "engine_timeout"
        ollama_error = httpx.post(
            f"{url}/api/generate", json={"model": "a", "prompt": "x", "stream": False}, headers=AUTH
        )
        assert ollama_error.status_code == 504 and "did not answer within 0.5 s" in ollama_error.json()["error"]


def test_engine_killed_mid_stream_ends_the_stream_with_an_error_and_the_front_goes_on(serve_config) -> None:
    with fake_engine(token_seconds=0.2) as (process, engine), serving(front_app(serve_config, engine)) as url:
        body = {"model": "a", "prompt": "x", "max_tokens": 40, "stream": True}
        with httpx.stream("POST", f"{url}/v1/completions", json=body, headers=AUTH, timeout=30) as response:
            events = []
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                events.append(line.removeprefix("data: "))
                if len(events) == 2:
                    process.kill()
        assert json.loads(events[0])["choices"][0]["text"] == "tok0 "
        error = json.loads(events[-2])["error"]
        assert error["code"] == 502 and error["type"] == "engine_error", events
        assert events[-1] == "[DONE]" and len(events) < 40
        assert httpx.get(f"{url}/health").status_code == 200
        gone = httpx.post(f"{url}/generate", json={"inputs": "x"}, headers=AUTH)
        assert gone.status_code == 502 and "cannot reach the engine" in gone.json()["error"]


def test_engine_errors_become_502(serve_config, server: str) -> None:
    """An engine that refuses (here a wrong key for the engine) is a 502 that says what the engine answered."""
    with serving(front_app(serve_config, server, engine_api_key="wrong")) as url:
        refused = httpx.post(f"{url}/v1/completions", json={"prompt": "x", "max_tokens": 2}, headers=AUTH)
    assert refused.status_code == 502 and "answered 401" in refused.json()["error"]["message"]


def test_engine_models_map_served_names_to_the_engines(serve_config, server: str) -> None:
    """`--engine_models` sends a served name as another engine model; a name only it knows is served as an adapter."""
    mapped = ["a=b", "c=a"]
    with serving(front_app(serve_config, server, engine_models=mapped)) as url:
        models = [m.id for m in sdk(url).models.list()]
        assert models[-1] == "c"
        assert complete(url, "a") == complete(server, "b") and complete(url, "c") == complete(server, "a")
