"""The HTTP layer under attack and under load, with a fake engine: bounded rows counted before any work, the event loop
never frozen, TCP_NODELAY, a 4xx (never a 500) naming the field for every client mistake, abandoned requests stopped,
and the protocol details real clients rely on."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from dataclasses import replace

import httpx
import pytest
from fastapi.testclient import TestClient

from personal_copilot.serve.app import AppSettings, create_app
from personal_copilot.serve.run import bind_socket
from tests.serve.conftest import API_KEY, AUTH, FAKE_INFO, FakeEngine
from tests.serve.test_routes import fake_serving, ndjson_lines, wait_until

GENERATION_ROUTES = [
    ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 1}}),
    ("/generate_stream", {"inputs": "x", "parameters": {"max_new_tokens": 1}}),
    ("/", {"inputs": "x", "parameters": {"max_new_tokens": 1}}),
    ("/v1/completions", {"prompt": "x", "max_tokens": 1}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 1}),
    ("/api/generate", {"model": "a", "prompt": "x", "options": {"num_predict": 1}}),
    ("/api/chat", {"model": "a", "messages": [{"role": "user", "content": "x"}], "options": {"num_predict": 1}}),
    ("/infill", {"input_prefix": "x", "n_predict": 1}),
]


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def client(fake: FakeEngine):
    with TestClient(create_app(fake, AppSettings(api_key=API_KEY, max_rows_per_request=8))) as client:
        client.headers.update(AUTH)
        yield client


def message_of(response: httpx.Response) -> str:
    error = response.json()["error"]
    return error["message"] if isinstance(error, dict) else error


# --- rows: bounded, counted before any work, prepared off the event loop -----------------------------------------


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/completions", {"prompt": ["p"] * 9, "max_tokens": 1}),
        ("/v1/completions", {"prompt": ["p", "q", "r"], "n": 3, "max_tokens": 1, "stream": True}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "n": 9}),
    ],
)
def test_more_rows_than_the_limit_are_413_before_any_work(client: TestClient, fake, path: str, body: dict) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 413
    assert "over this server's limit of 8 per request (--max_rows_per_request)" in message_of(response)
    assert response.json()["error"]["param"] == ("n" if "chat" in path else "prompt")
    assert not fake.requests  # nothing built, nothing tokenized


def test_requests_are_prepared_off_the_event_loop(client: TestClient, fake: FakeEngine) -> None:
    assert client.post("/v1/completions", json={"prompt": ["p", "q"], "n": 2, "max_tokens": 1}).status_code == 200
    assert len(fake.prepare_threads) == 4
    assert all(name.startswith("pcopilot-prepare") for name in fake.prepare_threads), fake.prepare_threads


def test_rows_count_against_the_concurrency_limit_before_any_work(fake: FakeEngine) -> None:
    settings = AppSettings(api_key=API_KEY, max_concurrent_requests=4, batch_window_ms=0)
    with fake_serving(fake, settings) as url:
        too_many = httpx.post(f"{url}/v1/completions", json={"prompt": "x", "n": 5}, headers=AUTH, timeout=10)
        fake.hold.clear()
        outcome: dict = {}
        body = {"prompt": ["p", "q", "r"], "max_tokens": 1}
        held = threading.Thread(
            target=lambda: outcome.update(r=httpx.post(f"{url}/v1/completions", json=body, headers=AUTH, timeout=30))
        )
        held.start()
        assert fake.started.wait(10)
        busy = httpx.post(f"{url}/v1/completions", json={"prompt": "x", "n": 2}, headers=AUTH, timeout=10)
        prepared_while_busy = len(fake.prepared)
        fake.hold.set()
        held.join(10)
    assert too_many.status_code == 413 and "(--max_concurrent_requests)" in message_of(too_many)
    assert busy.status_code == 429 and "2 more asked for, the limit is 4" in message_of(busy)
    assert prepared_while_busy == 3  # the refused request was never prepared
    assert outcome["r"].status_code == 200


@pytest.mark.slow
def test_health_answers_within_1_s_while_a_maximal_request_is_refused(fake: FakeEngine) -> None:
    """The request that froze the server for 40 s: a body just under the limit, all tiny prompts, n=16 (the prompt
    list is refused before its items are read; a shorter one by the row limit, before any is built)."""
    settings = AppSettings(api_key=API_KEY, max_body_bytes=2_000_000)
    prompts = json.dumps(["p"] * 470_000, separators=(",", ":"))
    body = f'{{"prompt": {prompts}, "n": 16, "max_tokens": 1}}'.encode()
    assert 1_800_000 < len(body) < 2_000_000
    outcome: dict = {}
    with fake_serving(fake, settings) as url, httpx.Client(timeout=10) as health_client:
        health_client.get(f"{url}/health")  # connected before the timing
        headers = AUTH | {"Content-Type": "application/json"}
        big = threading.Thread(
            target=lambda: outcome.update(r=httpx.post(f"{url}/v1/completions", content=body, headers=headers))
        )
        big.start()
        slowest = 0.0
        while big.is_alive():
            start = time.perf_counter()
            assert health_client.get(f"{url}/health").status_code == 200
            slowest = max(slowest, time.perf_counter() - start)
            time.sleep(0.01)
        big.join()
    assert outcome["r"].status_code == 422 and "470000 prompts, over the limit of 1024" in message_of(outcome["r"])
    assert not fake.requests
    assert slowest < 1.0, f"/health took {slowest:.2f} s while the request was refused"


# --- TCP_NODELAY ---------------------------------------------------------------------------------------------------


def test_connections_accepted_on_the_servers_socket_have_tcp_nodelay() -> None:
    """asyncio (and so uvicorn, which serves `bind_socket`'s socket through `loop.create_server`) sets TCP_NODELAY
    on accepted connections only when the listening socket says IPPROTO_TCP; without it, every response on a
    kept-alive connection waits for the client's delayed ACK (~40 ms)."""
    sock = bind_socket("127.0.0.1", 0)

    async def accept_one() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Record(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                server_side = transport.get_extra_info("socket")
                accepted.set_result(server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Record, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname())
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()

    assert sock.proto == socket.IPPROTO_TCP
    assert asyncio.run(accept_one()) != 0


# --- client mistakes are a 4xx naming the field, never a 500 --------------------------------------------------------


def _with_surrogate(body: dict) -> bytes:
    """The body with its first text value replaced by a lone surrogate, escaped as JSON can carry it."""
    text = json.dumps(body)
    return text.replace('"x"', '"\\ud800"', 1).replace('"a"', '"\\udfff"', 1).encode()


@pytest.mark.parametrize("path, body", GENERATION_ROUTES)
def test_a_lone_surrogate_is_a_422_naming_the_field_on_every_generation_route(client, fake, path, body) -> None:
    response = client.post(path, content=_with_surrogate(body), headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert "lone UTF-16 surrogate '\\ud800'" in message_of(response) or "'\\udfff'" in message_of(response)
    field = {"/v1/chat/completions": "messages", "/api/chat": "messages", "/infill": "input_prefix"}
    field |= {"/v1/completions": "prompt", "/api/generate": "model"}
    assert field.get(path, "inputs") in message_of(response)
    assert not fake.requests


def test_surrogates_in_names_and_unknown_keys_still_give_a_readable_error(client: TestClient) -> None:
    raw = b'{"model": "a", "prompt": "x", "options": {"\\ud800": 1}}'
    response = client.post("/api/generate", content=raw)
    assert response.status_code == 422 and "options" in message_of(response)
    raw = b'{"model": "\\ud800\\ud800x", "prompt": "x"}'
    unknown = client.post("/v1/completions", content=raw, headers={"Content-Type": "application/json"})
    assert unknown.status_code == 422 and "model" in message_of(unknown)


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/generate", {"inputs": "x", "parameters": {"seed": 2**64}}, "parameters.seed"),
        ("/generate", {"inputs": "x", "parameters": {"seed": -1}}, "parameters.seed"),
        ("/v1/completions", {"prompt": "x", "seed": 2**64}, "seed"),
        ("/v1/completions", {"prompt": "x", "seed": -(2**63) - 1}, "seed"),
        ("/api/generate", {"model": "a", "prompt": "x", "options": {"seed": 2**70}}, "options.seed"),
        ("/infill", {"input_prefix": "x", "seed": 2**64}, "seed"),
    ],
)
def test_a_seed_outside_64_bits_is_a_422_naming_it(client, fake, path: str, body: dict, field: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422 and field in message_of(response)
    assert not fake.requests


def test_seeds_at_the_64_bit_edges_are_served(client: TestClient, fake: FakeEngine) -> None:
    body = {"prompt": "x", "seed": 2**64 - 1, "n": 2, "max_tokens": 1}
    assert client.post("/v1/completions", json=body).status_code == 200
    assert [p.request.sampling.seed for p in fake.prepared] == [2**64 - 1, 0]  # consecutive, modulo 2**64
    assert client.post("/v1/completions", json=body | {"seed": -1, "n": 1}).status_code == 200
    assert fake.prepared[-1].request.sampling.seed == 2**64 - 1
    ollama = {"model": "a", "prompt": "x", "stream": False, "options": {"seed": -1, "num_predict": 1}}
    assert client.post("/api/generate", json=ollama).status_code == 200
    assert fake.prepared[-1].request.sampling.seed is None  # Ollama's -1: a random seed


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_a_422_naming_the_field(client: TestClient, value: str) -> None:
    raw = f'{{"inputs": "x", "parameters": {{"repetition_penalty": {value}}}}}'.encode()
    response = client.post("/generate", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "parameters.repetition_penalty" in message_of(response)


# --- an abandoned request stops ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_client_that_leaves_a_non_streamed_request_stops_its_generation(fake: FakeEngine, caplog) -> None:
    fake.token_seconds = 0.05
    body = {"inputs": "long", "parameters": {"max_new_tokens": 100}}
    with caplog.at_level(logging.INFO, logger="personal_copilot.serve"), fake_serving(fake, AppSettings()) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/generate", json=body, timeout=0.5)
        wait_until(lambda: fake.cancelled)
        wait_until(lambda: any("499" in r.getMessage() for r in caplog.records))
    assert fake.cancelled == ["long"]  # stopped well before its 100 tokens (5 s)
    messages = [r.getMessage() for r in caplog.records if r.name == "personal_copilot.serve"]
    assert "POST /generate: the client left; stopped its 1 generation(s)" in messages
    assert any(m.startswith("POST /generate 499 latency=") for m in messages)


# --- protocol details ----------------------------------------------------------------------------------------------


def test_tgi_default_max_new_tokens_is_capped_to_the_servers_limit() -> None:
    fake = FakeEngine(info=replace(FAKE_INFO, max_new_tokens=40))
    with TestClient(create_app(fake)) as client:
        assert client.post("/generate", json={"inputs": "x"}).status_code == 200
        asked = client.post("/generate", json={"inputs": "x", "parameters": {"max_new_tokens": 100}})
    assert fake.prepared[0].max_new_tokens == 40
    assert asked.status_code == 422  # asked for explicitly: still an error


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_ollama_routes_read_json_whatever_the_content_type(client: TestClient, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    raw = json.dumps({"model": "a", "prompt": "x", "stream": False, "options": {"num_predict": 1}}).encode()
    response = client.post("/api/generate", content=raw, headers=headers)
    assert response.status_code == 200 and response.json()["response"] == "a0 "
    show = client.post("/api/show", content=b'{"name": "a"}', headers=headers)
    assert show.status_code == 200


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
def test_other_routes_say_content_type_when_the_body_is_not_json(client: TestClient, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/generate", content=b'{"inputs": "x"}', headers=headers)
    assert response.status_code == 422
    assert "Content-Type: application/json" in message_of(response)


def test_the_ollama_clients_own_options_are_accepted(client: TestClient) -> None:
    options = {"num_predict": 1, "f16_kv": True, "logits_all": False, "embedding_only": False}
    body = {"model": "a", "prompt": "x", "stream": False, "logprobs": False, "top_logprobs": 0, "options": options}
    assert client.post("/api/generate", json=body).status_code == 200
    chat = {"model": "a", "messages": [{"role": "user", "content": "x"}], "stream": False, "logprobs": False}
    assert client.post("/api/chat", json=chat | {"options": options}).status_code == 200
    asked = client.post("/api/generate", json=body | {"logprobs": True})
    assert asked.status_code == 422 and "logprobs=True is not supported" in message_of(asked)


def test_an_empty_openai_prompt_list_is_a_422(client: TestClient, fake: FakeEngine) -> None:
    response = client.post("/v1/completions", json={"prompt": [], "max_tokens": 1})
    assert response.status_code == 422 and "prompt" in message_of(response)
    assert not fake.requests


@pytest.mark.parametrize("method, path, allow", [("GET", "/generate", "POST"), ("POST", "/v1/models", "GET")])
def test_405_says_which_methods_are_allowed(client: TestClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405 and response.headers["allow"] == allow


def test_ndjson_stream_of_an_ollama_request_without_content_type(client: TestClient) -> None:
    raw = json.dumps({"model": "b", "prompt": "x", "options": {"num_predict": 2}}).encode()
    lines = ndjson_lines(client.post("/api/generate", content=raw).text)
    assert [line["response"] for line in lines] == ["b0 ", "b1 ", ""]
