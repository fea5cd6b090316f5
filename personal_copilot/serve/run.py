"""`pcopilot serve`: load the model and its adapters, print the editor settings, serve until interrupted.

    pcopilot serve --model runs/sc1b-lora --adapters chat=runs/chat-lora --port 8080

Python: `run_serve(ServeConfig(model="runs/sc1b-lora"))` blocks until Ctrl-C; to embed the server, build the app with
`personal_copilot.serve.app.create_app(TransformersEngine.load(config))`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import sys
import time

from personal_copilot.errors import PcopilotError
from personal_copilot.serve.auth import API_KEY_ENV
from personal_copilot.serve.config import ServeConfig
from personal_copilot.serve.editors import editor_instructions
from personal_copilot.serve.model_source import describe_names
from personal_copilot.serve.report import ServeReport

logger = logging.getLogger("personal_copilot.serve")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one): a taken port fails before the model loads, and clients
    that connect while it loads wait in the backlog instead of being refused. It is made as a TCP socket (not
    protocol 0), so asyncio sets TCP_NODELAY on every connection it accepts: without it, Nagle's algorithm meets the
    client's delayed ACK and every response on a kept-alive connection waits ~40 ms."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise PcopilotError(
            f"cannot listen on {host}:{port}: {error.strerror}; choose another --port (0 picks a free one)"
        ) from error
    sock.listen(2048)
    return sock


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _configure_logging() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO)


def load_engine(config: ServeConfig):
    """The engine `config` asks for: the in-process transformers one, or the front of `--engine URL`."""
    if config.engine is not None:
        from personal_copilot.serve.remote_engine import RemoteEngine

        return RemoteEngine.load(config)
    from personal_copilot.serve.engine import TransformersEngine

    return TransformersEngine.load(config)


def run_serve(config: ServeConfig) -> ServeReport:
    """Serves until interrupted (Ctrl-C) and reports what was served."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise PcopilotError(
            f"serving needs the serve extra ({error.name} missing): pip install 'personal-copilot[serve]'"
        ) from error

    from personal_copilot.serve.app import AppSettings, create_app

    api_key = config.api_key or os.environ.get(API_KEY_ENV) or None
    sock = bind_socket(config.host, config.port)
    _configure_logging()
    engine = load_engine(config)
    settings = AppSettings(
        api_key=api_key,
        max_batch_size=config.max_batch_size,
        batch_window_ms=config.batch_window_ms,
        max_concurrent_requests=config.max_concurrent_requests,
        max_body_bytes=config.max_body_bytes,
        max_rows_per_request=config.max_rows_per_request,
    )
    app = create_app(engine, settings)
    host, port = sock.getsockname()[:2]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://[{shown_host}]:{port}" if ":" in shown_host else f"http://{shown_host}:{port}"
    info = engine.info
    print(editor_instructions(info, url, api_key is not None), flush=True)
    if not is_loopback(host) and api_key is None:
        logger.warning("listening on %s without --api_key: anyone who can reach this port can use the model", host)
    key = "" if api_key is None else " (API key required)"
    logger.info("serving on %s%s: %s", url, key, describe_names(info))
    if config.engine is not None:
        logger.info("generating with the engine at %s", config.engine)
    start = time.perf_counter()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it stopped on: a normal stop here
        server.run(sockets=[sock])
    stats = app.state.service.scheduler.stats
    return ServeReport(
        url=url,
        model=info.name,
        adapters=list(info.adapters),
        requests=stats.requests,
        failed=stats.failed,
        generated_tokens=stats.generated_tokens,
        batches=stats.batches,
        largest_batch=stats.largest_batch,
        seconds=round(time.perf_counter() - start, 1),
    )
