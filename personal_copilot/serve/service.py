"""The one path every route takes: count the request's completions against the limits before any work, prepare them
(tokenize: 4xx before anything is queued) on a thread of their own, so that the event loop keeps answering, then queue
them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from personal_copilot.serve.batching import Scheduler, Ticket
from personal_copilot.serve.generation import Engine, GenerationRequest, ModelInfo, PreparedRequest, RequestError


class CompletionService:
    """The engine and its scheduler, as the routes use them.

    Args:
        engine: what prepares and generates.
        scheduler: what queues and batches.
        max_rows: most completions one request may ask for (OpenAI: prompts × n).
    """

    def __init__(self, engine: Engine, scheduler: Scheduler, max_rows: int) -> None:
        self.engine = engine
        self.scheduler = scheduler
        self.max_rows = max_rows
        self._preparing: ThreadPoolExecutor | None = None

    @property
    def info(self) -> ModelInfo:
        return self.engine.info

    def close(self) -> None:
        """Stops the preparing thread (a later request starts another)."""
        if self._preparing is not None:
            self._preparing.shutdown(wait=False, cancel_futures=True)
            self._preparing = None

    def check_rows(self, rows: int, field: str) -> None:
        """Raises RequestError 413 (naming `field`) for more completions than one request may ask for."""
        limit = min(self.max_rows, self.scheduler.max_pending)
        if rows > limit:
            flag = "--max_rows_per_request" if limit == self.max_rows else "--max_concurrent_requests"
            raise RequestError(
                f"{field}: this request asks for {rows} completions, over this server's limit of {limit} per request "
                f"({flag}); send fewer prompts or a smaller n",
                status=413,
                field=field,
            )

    async def start(
        self,
        build: Callable[[], Sequence[GenerationRequest]],
        rows: int = 1,
        stream: bool = False,
        field: str = "n",
    ) -> list[Ticket]:
        """Admits `rows` completions, then builds and prepares them off the event loop and queues them all (or none);
        `stream` delivers their token events.

        Raises:
            RequestError: too many rows (413, before any work), a full server (429, before any work), or a request the
                engine refuses (404, 422).
        """
        self.check_rows(rows, field)
        self.scheduler.reserve(rows)
        if self._preparing is None:
            self._preparing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pcopilot-prepare")
        try:
            prepared = await asyncio.get_running_loop().run_in_executor(self._preparing, self._prepare, build, rows)
        except BaseException:
            self.scheduler.release(rows)
            raise
        return [self.scheduler.submit(item, stream) for item in prepared]

    def _prepare(self, build: Callable[[], Sequence[GenerationRequest]], rows: int) -> list[PreparedRequest]:
        requests = build()
        if len(requests) != rows:
            raise AssertionError(f"a route counted {rows} rows and built {len(requests)}")
        return [self.engine.prepare(request) for request in requests]
