"""Serving fixtures: a fake engine (for the HTTP layer), two LoRA adapters on the tiny Llama, the real engine over
them, and uvicorn servers on a free loopback port, started in a thread and stopped by the fixture."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from personal_copilot.serve.generation import (
    FimTokens,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    OnToken,
    PreparedRequest,
    RequestError,
    TokenEvent,
)

API_KEY = "test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"

FAKE_INFO = ModelInfo(
    name="fake-coder",
    base_model="org/fake-base",
    tokenizer="org/fake-base",
    base_name="fake-base",
    adapters=("a", "b"),
    default_adapter=None,
    max_input_tokens=100,
    max_new_tokens=128,
    max_total_tokens=228,
    fim=FimTokens("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>", ("<|endoftext|>",)),
    chat=True,
    model_type="llama",
    parameters=1000,
)


@dataclass
class FakeEngine:
    """Generates `max_new_tokens` tokens `"{adapter}{k} "` per request; records every request and batch. `hold`
    (cleared) makes a batch wait until it is set; `token_seconds` paces the tokens; a prompt equal to `fail_on`
    (or a chat message) makes the engine raise. `prepare_threads` records the thread each request was prepared on."""

    info: ModelInfo = FAKE_INFO
    requests: list[GenerationRequest] = field(default_factory=list)
    prepared: list[PreparedRequest] = field(default_factory=list)
    batches: list[list[str]] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    token_seconds: float = 0.0
    cancelled: list[str] = field(default_factory=list)
    fail_on: str = "FAIL"
    prepare_threads: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hold.set()

    def prepare(self, request: GenerationRequest) -> PreparedRequest:
        self.requests.append(request)
        self.prepare_threads.append(threading.current_thread().name)
        adapter = self.info.adapter_for(request.model)
        if request.max_new_tokens is not None and request.max_new_tokens > self.info.max_new_tokens:
            raise RequestError("max_new_tokens over the limit", field="max_new_tokens")
        text = request.prompt if request.messages is None else "".join(c for _, c in request.messages)
        prepared = PreparedRequest(
            request=request,
            prompt_ids=[ord(c) for c in text + (request.suffix or "")],
            adapter=adapter,
            max_new_tokens=request.max_new_tokens or self.info.max_new_tokens,
            prefix=request.prompt if request.suffix is not None else None,
            suffix=request.suffix,
        )
        self.prepared.append(prepared)
        return prepared

    def generate(self, batch: Sequence[PreparedRequest], on_token: OnToken) -> list[GenerationResult]:
        self.batches.append([p.request.prompt for p in batch])
        self.started.set()
        assert self.hold.wait(10), "test left the fake engine on hold"
        if any(self.fail_on in (p.request.prompt, *(c for _, c in p.request.messages or ())) for p in batch):
            raise RuntimeError("the fake engine failed")
        results = []
        for i, p in enumerate(batch):
            tag = p.adapter or "base"
            tokens = []
            for k in range(p.max_new_tokens):
                time.sleep(self.token_seconds)
                tokens.append(TokenEvent(id=k, text=f"{tag}{k} ", logprob=-0.5))
                if not on_token(i, tokens[-1]):
                    self.cancelled.append(p.request.prompt)
                    break
            results.append(
                GenerationResult(
                    text="".join(t.text for t in tokens),
                    finish_reason="length",
                    prompt_tokens=len(p.prompt_ids),
                    generated_tokens=len(tokens),
                    tokens=tokens,
                    adapter=p.adapter,
                )
            )
        return results


@contextmanager
def serving(app) -> Iterator[str]:
    """Runs `app` with uvicorn on 127.0.0.1 (a free port) in a thread; yields its URL; stops it after."""
    import uvicorn

    from personal_copilot.serve.run import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


@pytest.fixture(scope="session")
def adapters(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two non-zero LoRA adapters (different seeds) of the tiny Llama-style model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = {}
    for name, seed in (("a", 1), ("b", 2)):
        base = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
        torch.manual_seed(seed)
        lora = LoraConfig(r=8, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
        model = get_peft_model(base, lora)
        paths[name] = tmp_path_factory.mktemp(f"adapter-{name}")
        model.save_pretrained(paths[name])
    return paths


@pytest.fixture(scope="session")
def chat_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chat") / "template.jinja"
    path.write_text(CHAT_TEMPLATE)
    return path


@pytest.fixture(scope="session")
def serve_config(tiny_models: dict[str, Path], adapters: dict[str, Path], chat_template: Path):
    from personal_copilot.serve import ServeConfig

    return ServeConfig(
        model=str(tiny_models["llama"]),
        name="tiny-starcoder",
        adapters=[f"{name}={path}" for name, path in adapters.items()],
        chat_template=chat_template,
        max_new_tokens=48,
        max_input_tokens=256,
        precision="fp32",
    )


@pytest.fixture(scope="session")
def engine(serve_config):
    """The real engine: the tiny Llama with adapters a and b, a chat template, 256 prompt / 48 new tokens."""
    from personal_copilot.serve.engine import TransformersEngine

    return TransformersEngine.load(serve_config)


@pytest.fixture(scope="session")
def server(engine) -> Iterator[str]:
    """The real engine behind uvicorn on a free loopback port, with API key `test-key`."""
    from personal_copilot.serve.app import AppSettings, create_app

    with serving(create_app(engine, AppSettings(api_key=API_KEY))) as url:
        yield url
