"""The HTTP layer with a fake engine: every route's shape, SSE and NDJSON framing, errors in each protocol's shape,
limits, batching and the log line."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient

from personal_copilot.serve.app import AppSettings, create_app
from tests.serve.conftest import API_KEY, AUTH, FakeEngine, serving


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def client(fake: FakeEngine):
    with TestClient(create_app(fake, AppSettings(api_key=API_KEY, max_body_bytes=10_000))) as client:
        client.headers.update(AUTH)
        yield client


def sse_events(text: str) -> list[str]:
    """The data of each event; asserts the framing (`data: …` lines separated by blank lines)."""
    assert text.endswith("\n\n")
    blocks = text.split("\n\n")[:-1]
    assert all(block.startswith("data: ") and "\n" not in block for block in blocks), blocks
    return [block.removeprefix("data: ") for block in blocks]


def ndjson_lines(text: str) -> list[dict]:
    assert text.endswith("\n") and "\n\n" not in text
    return [json.loads(line) for line in text.splitlines()]


# --- text-generation-inference ----------------------------------------------------------------------------------


def test_generate_returns_an_object(client: TestClient, fake: FakeEngine) -> None:
    response = client.post("/generate", json={"inputs": "def f(", "parameters": {"max_new_tokens": 3}})
    assert response.status_code == 200
    assert response.json() == {"generated_text": "base0 base1 base2 "}
    assert fake.prepared[-1].request.prompt == "def f(" and fake.prepared[-1].max_new_tokens == 3


def test_generate_details_full_text_and_adapter(client: TestClient, fake: FakeEngine) -> None:
    parameters = {"max_new_tokens": 2, "details": True, "return_full_text": True, "adapter_id": "a"}
    body = client.post("/generate", json={"inputs": "x = ", "parameters": parameters}).json()
    assert body["generated_text"] == "x = a0 a1 "
    assert body["details"]["finish_reason"] == "length" and body["details"]["generated_tokens"] == 2
    assert [t["text"] for t in body["details"]["tokens"]] == ["a0 ", "a1 "]


def test_tgi_defaults_to_100_tokens_and_reads_null_as_default(client: TestClient, fake: FakeEngine) -> None:
    parameters = {"max_new_tokens": None, "details": None, "best_of": None, "watermark": None, "do_sample": None}
    client.post("/generate", json={"inputs": "x", "parameters": parameters})
    assert fake.requests[-1].max_new_tokens == 100


def test_compat_route_returns_a_list(client: TestClient) -> None:
    response = client.post("/", json={"inputs": "x", "parameters": {"max_new_tokens": 2}})
    assert response.json() == [{"generated_text": "base0 base1 "}]


@pytest.mark.parametrize("path, body", [("/generate_stream", {}), ("/", {"stream": True})])
def test_tgi_streams_one_event_per_token_then_the_text(client: TestClient, path: str, body: dict) -> None:
    response = client.post(path, json={"inputs": "x", "parameters": {"max_new_tokens": 3}, **body})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(data) for data in sse_events(response.text)]
    assert [e["token"]["text"] for e in events] == ["base0 ", "base1 ", "base2 "]
    assert [e["generated_text"] for e in events] == [None, None, "base0 base1 base2 "]
    assert events[-1]["details"] == {"finish_reason": "length", "generated_tokens": 3, "seed": None, "input_length": 1}


def test_openapi_document_lists_every_protocols_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = ["/generate", "/generate_stream", "/", "/info", "/v1/completions", "/v1/chat/completions"]
    expected += ["/v1/models", "/api/generate", "/api/chat", "/api/tags", "/api/show", "/infill", "/health"]
    assert set(expected) <= set(paths)
    assert "suffix" in json.dumps(client.get("/openapi.json").json()["components"]["schemas"]["CompletionRequest"])


def test_info_has_both_input_limit_names_adapters_and_fim_tokens(client: TestClient) -> None:
    info = client.get("/info").json()
    assert info["model_id"] == "fake-coder" and info["max_input_tokens"] == info["max_input_length"] == 100
    assert info["adapters"] == ["a", "b"] and info["fim"]["prefix"] == "<fim_prefix>"


# --- OpenAI -----------------------------------------------------------------------------------------------------


def test_completion_with_suffix_and_echo(client: TestClient, fake: FakeEngine) -> None:
    body = {"model": "b", "prompt": "def f(x):\n", "suffix": "\n    return y", "max_tokens": 2, "echo": True}
    response = client.post("/v1/completions", json=body).json()
    assert response["object"] == "text_completion" and response["model"] == "b"
    assert response["choices"] == [
        {"index": 0, "text": "def f(x):\nb0 b1 ", "logprobs": None, "finish_reason": "length"}
    ]
    assert response["usage"] == {"prompt_tokens": 23, "completion_tokens": 2, "total_tokens": 25}
    assert fake.prepared[-1].suffix == "\n    return y" and fake.prepared[-1].adapter == "b"


def test_completion_prompts_and_choices_are_batched_with_consecutive_seeds(client: TestClient, fake) -> None:
    body = {"prompt": ["p", "q"], "n": 2, "max_tokens": 1, "seed": 7}
    choices = client.post("/v1/completions", json=body).json()["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2, 3]
    assert fake.batches[-1] == ["p", "p", "q", "q"]
    assert [p.request.sampling.seed for p in fake.prepared[-4:]] == [7, 8, 7, 8]


def test_completion_stream_chunks_end_with_done(client: TestClient) -> None:
    body = {"prompt": "x", "max_tokens": 2, "stream": True, "stream_options": {"include_usage": True}}
    events = sse_events(client.post("/v1/completions", json=body).text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert [c["choices"][0]["text"] for c in chunks[:2]] == ["base0 ", "base1 "]
    assert chunks[2]["choices"][0]["finish_reason"] == "length"
    assert chunks[3]["choices"] == [] and chunks[3]["usage"]["completion_tokens"] == 2


def test_chat_and_chat_stream(client: TestClient, fake: FakeEngine) -> None:
    body = {
        "model": "a",
        "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
    }
    response = client.post("/v1/chat/completions", json=body | {"max_tokens": 2}).json()
    assert response["choices"][0]["message"] == {"role": "assistant", "content": "a0 a1 "}
    assert fake.prepared[-1].request.messages == (("system", "be brief"), ("user", "hi"))
    events = sse_events(client.post("/v1/chat/completions", json=body | {"max_tokens": 2, "stream": True}).text)
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "a0 a1 "
    assert chunks[-1]["object"] == "chat.completion.chunk" and events[-1] == "[DONE]"


def test_models_lists_served_name_base_and_adapters(client: TestClient) -> None:
    data = client.get("/v1/models").json()["data"]
    assert [m["id"] for m in data] == ["fake-coder", "fake-base", "a", "b"]
    assert [m["parent"] for m in data] == [None, None, "fake-base", "fake-base"]


# --- Ollama -----------------------------------------------------------------------------------------------------


def test_ollama_generate_streams_ndjson_by_default(client: TestClient, fake: FakeEngine) -> None:
    body = {"model": "a", "prompt": "def f(", "suffix": "):", "options": {"num_predict": 2, "num_ctx": 4096}}
    response = client.post("/api/generate", json=body)
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = ndjson_lines(response.text)
    assert [line["response"] for line in lines] == ["a0 ", "a1 ", ""]
    assert [line["done"] for line in lines] == [False, False, True]
    assert lines[-1]["done_reason"] == "length" and lines[-1]["eval_count"] == 2
    assert fake.prepared[-1].suffix == "):" and fake.prepared[-1].request.sampling.top_k == 40


def test_ollama_generate_without_stream_and_chat(client: TestClient) -> None:
    body = {"model": "fake-coder", "prompt": "x", "stream": False, "options": {"num_predict": 1}}
    assert client.post("/api/generate", json=body).json()["response"] == "base0 "
    chat = {"model": "b", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 1}}
    lines = ndjson_lines(client.post("/api/chat", json=chat).text)
    assert lines[0]["message"] == {"role": "assistant", "content": "b0 "} and lines[-1]["done"] is True


def test_ollama_empty_prompt_loads_without_generating(client: TestClient, fake: FakeEngine) -> None:
    body = client.post("/api/generate", json={"model": "a"}).json()
    assert body["done"] is True and body["response"] == "" and not fake.batches


def test_ollama_show_template_has_suffix_and_parameters_parse_like_continue(client: TestClient) -> None:
    shown = client.post("/api/show", json={"name": "a"}).json()
    assert ".Suffix" in shown["template"] and "insert" in shown["capabilities"]
    parsed = [re.match(r"^(\S+)\s+((?:\".*\")|\S+)$", line).groups() for line in shown["parameters"].split("\n")]
    assert ("num_ctx", "100") in parsed and ("stop", '"<|endoftext|>"') in parsed
    assert [m["name"] for m in client.get("/api/tags").json()["models"]] == ["fake-coder", "fake-base", "a", "b"]


# --- llama.cpp --------------------------------------------------------------------------------------------------


def test_infill_joins_prefix_and_cursor_line_and_streams(client: TestClient, fake: FakeEngine) -> None:
    body = {
        "input_prefix": "def f(x):\n",
        "prompt": "    ret",
        "input_suffix": "\n",
        "input_extra": [{"filename": "u.py", "text": "X = 1"}],
        "n_predict": 2,
        "cache_prompt": True,
        "t_max_predict_ms": 500,
    }
    response = client.post("/infill", json=body).json()
    assert response["content"] == "base0 base1 " and response["stop"] is True and response["tokens_predicted"] == 2
    request = fake.prepared[-1].request
    assert request.prompt == "def f(x):\n    ret" and request.context_files[0].filename == "u.py"
    events = [json.loads(e) for e in sse_events(client.post("/infill", json=body | {"stream": True}).text)]
    assert [e["content"] for e in events] == ["base0 ", "base1 ", ""] and events[-1]["stop"] is True


# --- errors and limits ------------------------------------------------------------------------------------------


def test_missing_or_wrong_key_is_401_and_health_is_open(fake: FakeEngine) -> None:
    with TestClient(create_app(fake, AppSettings(api_key=API_KEY))) as client:
        assert client.get("/health").json() == {"status": "ok"}
        missing = client.post("/generate", json={"inputs": "x"})
        wrong = client.post("/v1/completions", json={"prompt": "x"}, headers={"Authorization": "Bearer nope"})
        malformed = client.post("/api/generate", content=b"{oops", headers={"Authorization": "Basic " + API_KEY})
        unknown_route = client.get("/secret")
        assert client.get("/openapi.json").status_code == 200
    assert malformed.status_code == unknown_route.status_code == 401  # the key is checked before the body is read
    assert malformed.json() == {"error": "missing API key: send the server's key as `Authorization: Bearer KEY`"}
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error_type"] == "authentication" and "missing API key" in missing.json()["error"]
    assert wrong.status_code == 401 and "wrong API key" in wrong.json()["error"]["message"]
    assert not fake.prepared


@pytest.mark.parametrize(
    "path, body, shape",
    [
        ("/generate", {"inputs": "x", "parameters": {"adapter_id": "zz"}}, lambda b: b["error_type"] == "not_found"),
        ("/v1/completions", {"model": "zz", "prompt": "x"}, lambda b: b["error"]["code"] == 404),
        ("/api/generate", {"model": "zz", "prompt": "x"}, lambda b: set(b) == {"error"}),
        ("/api/show", {"model": "zz"}, lambda b: set(b) == {"error"}),
        ("/infill", {"model": "zz"}, lambda b: b["error_type"] == "not_found"),
    ],
)
def test_unknown_adapter_is_404_in_the_protocols_shape(client: TestClient, path: str, body: dict, shape) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 404 and shape(response.json())
    assert "'zz'" in response.text and "fake-coder, fake-base, a, b" in response.text


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 0}}, "parameters.max_new_tokens"),
        ("/generate", {"inputs": "x", "parameters": {"best_of": 2}}, "best_of=2 is not supported"),
        ("/generate", {"parameters": {}}, "inputs"),
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 500}}, "max_new_tokens"),
        ("/v1/completions", {"prompt": "x", "temperature": 3}, "temperature"),
        ("/v1/completions", {"prompt": "x", "logprobs": 3}, "logprobs=3 is not supported"),
        ("/v1/chat/completions", {"messages": []}, "messages"),
        ("/api/generate", {"model": "a", "prompt": "x", "options": {"bogus": 1}}, "options.bogus"),
        ("/infill", {"input_prefix": 3}, "input_prefix"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client: TestClient, path: str, body: dict, field: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert field in response.text


def test_malformed_json_is_422_not_500(client: TestClient) -> None:
    response = client.post("/generate", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["error"]


def test_body_over_the_limit_is_413(client: TestClient, fake: FakeEngine) -> None:
    response = client.post("/generate", json={"inputs": "x" * 20_000})
    assert response.status_code == 413 and "10000 bytes" in response.json()["error"]
    assert not fake.prepared


def test_engine_failure_fails_that_request_only(client: TestClient) -> None:
    failed = client.post("/generate", json={"inputs": "FAIL", "parameters": {"max_new_tokens": 1}})
    assert failed.status_code == 500 and "the fake engine failed" in failed.json()["error"]
    assert client.post("/generate", json={"inputs": "ok", "parameters": {"max_new_tokens": 1}}).status_code == 200


@pytest.mark.parametrize(
    "path, body",
    [
        ("/generate_stream", {"inputs": "FAIL"}),
        ("/v1/completions", {"prompt": "FAIL", "stream": True}),
        ("/api/generate", {"model": "a", "prompt": "FAIL"}),
        ("/infill", {"input_prefix": "FAIL", "stream": True}),
    ],
)
def test_an_engine_failure_inside_a_stream_is_an_error_event(client: TestClient, path: str, body: dict) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 200  # the stream had started
    if path == "/api/generate":
        error = ndjson_lines(response.text)[-1]["error"]
    else:
        events = sse_events(response.text)
        assert (events[-1] == "[DONE]") == path.startswith("/v1/")
        error = json.loads([e for e in events if e != "[DONE]"][-1])["error"]
    assert "the fake engine failed" in json.dumps(error)


def shape(value):
    """The structure of a JSON value: keys and value types, recursively."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


@pytest.mark.parametrize(
    "path, body",
    [
        ("/generate_stream", {"inputs": "FAIL"}),
        ("/", {"inputs": "FAIL", "stream": True}),
        ("/v1/completions", {"prompt": "FAIL", "stream": True}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "FAIL"}], "stream": True}),
        ("/api/generate", {"model": "a", "prompt": "FAIL"}),
        ("/api/chat", {"model": "a", "messages": [{"role": "user", "content": "FAIL"}]}),
        ("/infill", {"input_prefix": "FAIL", "stream": True}),
    ],
)
def test_a_streamed_error_has_the_shape_of_the_protocols_plain_error(
    client: TestClient, path: str, body: dict
) -> None:
    plain = client.post("/generate" if path == "/generate_stream" else path, json=body | {"stream": False})
    streamed = client.post(path, json=body | ({} if path == "/generate_stream" else {"stream": True}))
    assert plain.status_code == 500 and streamed.status_code == 200
    if path.startswith("/api/"):
        event = ndjson_lines(streamed.text)[-1]
    else:
        event = json.loads([e for e in sse_events(streamed.text) if e != "[DONE]"][-1])
    assert shape(event) == shape(plain.json())
    assert event == plain.json()  # the same type, code and message too


def test_a_log_line_per_request(client: TestClient, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="personal_copilot.serve"):
        client.post("/generate", json={"inputs": "x", "parameters": {"max_new_tokens": 4, "adapter_id": "a"}})
        client.post("/generate", json={"inputs": "x", "parameters": {"adapter_id": "zz"}})
    lines = [r.getMessage() for r in caplog.records if r.name == "personal_copilot.serve"]
    assert re.fullmatch(
        r"POST /generate 200 adapter=a prompt_tokens=1 generated_tokens=4 latency=\S+s tokens/s=\S+ finish=length",
        lines[0],
    )
    assert lines[1].startswith("POST /generate 404 latency=")


# --- concurrency, over a real socket ----------------------------------------------------------------------------


@contextmanager
def fake_serving(fake: FakeEngine, settings: AppSettings, app=None) -> Iterator[str]:
    with serving(app or create_app(fake, settings)) as url:
        try:
            yield url
        finally:  # never leave a request waiting on the fake: the server waits for requests before it stops
            fake.hold.set()


@pytest.fixture
def fake_server(fake: FakeEngine):
    settings = AppSettings(api_key=API_KEY, max_concurrent_requests=2, max_batch_size=8, batch_window_ms=0)
    with fake_serving(fake, settings) as url:
        yield url


def wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def post_in_thread(url: str, body: dict) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def post() -> None:
        outcome["response"] = httpx.post(f"{url}/generate", json=body, headers=AUTH, timeout=30)

    thread = threading.Thread(target=post)
    thread.start()
    return thread, outcome


def test_beyond_max_concurrent_requests_is_429_and_health_still_answers(fake_server: str, fake: FakeEngine) -> None:
    fake.hold.clear()
    first, _ = post_in_thread(fake_server, {"inputs": "one", "parameters": {"max_new_tokens": 1}})
    assert fake.started.wait(10)
    second, outcome = post_in_thread(fake_server, {"inputs": "two", "parameters": {"max_new_tokens": 1}})
    wait_until(lambda: len(fake.prepared) >= 2)
    refused = httpx.post(f"{fake_server}/generate", json={"inputs": "three"}, headers=AUTH, timeout=10)
    health = httpx.get(f"{fake_server}/health", timeout=10)
    fake.hold.set()
    first.join(10)
    second.join(10)
    assert refused.status_code == 429 and refused.json()["error_type"] == "overloaded"
    assert health.status_code == 200
    assert outcome["response"].status_code == 200
    assert httpx.post(f"{fake_server}/generate", json={"inputs": "four"}, headers=AUTH, timeout=10).status_code == 200


def test_requests_queued_during_a_batch_are_generated_as_one_batch_with_mixed_adapters(fake: FakeEngine) -> None:
    with fake_serving(fake, AppSettings(batch_window_ms=0)) as url:
        fake.hold.clear()
        blocker, _ = post_in_thread(url, {"inputs": "blocker", "parameters": {"max_new_tokens": 1}})
        assert fake.started.wait(10)
        queued = [
            post_in_thread(url, {"inputs": prompt, "parameters": {"max_new_tokens": 1, "adapter_id": adapter}})
            for prompt, adapter in (("x", "a"), ("y", "b"), ("z", None))
        ]
        wait_until(lambda: len(fake.prepared) >= 4)
        fake.hold.set()
        for thread, _ in [(blocker, None), *queued]:
            thread.join(10)
    assert fake.batches[0] == ["blocker"] and sorted(fake.batches[1]) == ["x", "y", "z"]
    assert sorted(o["response"].json()["generated_text"] for _, o in queued) == ["a0 ", "b0 ", "base0 "]


def test_a_failing_request_in_a_batch_fails_alone(fake: FakeEngine) -> None:
    with fake_serving(fake, AppSettings(max_concurrent_requests=8, batch_window_ms=0)) as url:
        fake.hold.clear()
        blocker, _ = post_in_thread(url, {"inputs": "blocker", "parameters": {"max_new_tokens": 1}})
        assert fake.started.wait(10)
        bad, bad_outcome = post_in_thread(url, {"inputs": "FAIL", "parameters": {"max_new_tokens": 1}})
        good, good_outcome = post_in_thread(url, {"inputs": "good", "parameters": {"max_new_tokens": 1}})
        wait_until(lambda: len(fake.prepared) >= 3)
        fake.hold.set()
        for thread in (blocker, bad, good):
            thread.join(10)
    assert sorted(fake.batches[1]) == ["FAIL", "good"]  # queued together, generated as one batch, which failed
    assert bad_outcome["response"].status_code == 500
    assert good_outcome["response"].json() == {"generated_text": "base0 "}  # retried alone


def test_a_client_that_leaves_a_stream_stops_its_generation(fake: FakeEngine) -> None:
    fake.token_seconds = 0.05
    with fake_serving(fake, AppSettings()) as url:
        body = {"inputs": "long", "parameters": {"max_new_tokens": 100}}
        with httpx.stream("POST", f"{url}/generate_stream", json=body, timeout=10) as response:
            assert next(response.iter_lines()).startswith("data: ")
        wait_until(lambda: fake.cancelled)
    assert fake.cancelled == ["long"]  # stopped well before its 100 tokens (5 s)
