"""Dynamic batching: requests queue up while the engine works, and one worker thread generates what is queued as one
batch. Neither torch nor FastAPI is imported here; the engine is any `Engine`.

An idle worker takes the first request and waits `batch_window` for others that arrive with it; a busy one finds the
requests that came meanwhile already queued and takes them all (up to `max_batch_size`). There is no continuous
batching: a request that arrives while a batch runs waits for that batch to finish. Admission is bounded: beyond
`max_pending` generations queued or running (including responses still being streamed), `reserve` refuses with 429,
before any work is done for the request.

The worker reports to the asyncio side through `loop.call_soon_threadsafe`, so the event loop (health checks,
other routes) never waits on generation. A batch that fails is retried one request at a time, so one bad request
fails alone (requests that had already streamed tokens to their client fail with it rather than repeat them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from personal_copilot.serve.generation import (
    Engine,
    GenerationResult,
    PreparedRequest,
    RequestError,
    StreamingEngine,
    TokenEvent,
)

logger = logging.getLogger("personal_copilot.serve")


class GenerationFailed(Exception):
    """The engine failed on this request (the server goes on); `status` is the HTTP status it is answered with (500:
    this process's engine, 502: a remote engine's error, 504: a remote engine's time-out)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class SchedulerStats:
    requests: int = 0
    failed: int = 0
    batches: int = 0
    largest_batch: int = 0
    generated_tokens: int = 0


class Ticket:
    """One queued generation: its events arrive on the event loop that submitted it (token events only when
    `stream`: a request answered in one piece wakes the event loop once, not once per token)."""

    def __init__(
        self, prepared: PreparedRequest, loop: asyncio.AbstractEventLoop, release: Callable[[], None], stream: bool
    ) -> None:
        self.prepared = prepared
        self.stream = stream
        self.queued_at = time.perf_counter()
        self.cancelled = False
        self.streamed = False
        self._loop = loop
        self._events: asyncio.Queue[TokenEvent | GenerationResult | BaseException] = asyncio.Queue()
        self._release = release
        self._released = False

    def put(self, item: TokenEvent | GenerationResult | BaseException) -> bool:
        """Hands an item to the event loop (from the worker thread); False once nobody listens."""
        if isinstance(item, TokenEvent):
            if not self.stream:
                return not self.cancelled
            self.streamed = True
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, item)
        except RuntimeError:  # the event loop is closed: the server is shutting down
            self.cancelled = True
        return not self.cancelled

    async def events(self) -> AsyncIterator[TokenEvent | GenerationResult]:
        """The generated tokens, then the result.

        Raises:
            GenerationFailed: the engine failed on this request.
        """
        while True:
            item = await self._events.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, GenerationResult):
                return

    async def result(self) -> GenerationResult:
        async for item in self.events():
            if isinstance(item, GenerationResult):
                return item
        raise AssertionError("unreachable: events() ends with the result")

    def close(self) -> None:
        """The response is done (or the client left): stop generating and free the slot."""
        self.cancelled = True
        if not self._released:
            self._released = True
            self._release()


class Scheduler:
    """Queues prepared requests and generates them in batches on one worker thread.

    Args:
        engine: what generates.
        max_batch_size: most requests in one batch.
        max_pending: most generations admitted at once (queued, running or still streaming).
        batch_window: seconds an idle worker waits for requests to batch with the first.
    """

    def __init__(self, engine: Engine, max_batch_size: int = 8, max_pending: int = 64, batch_window: float = 0.005):
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_pending = max_pending
        self.batch_window = batch_window
        self.stats = SchedulerStats()
        self._queue: queue.Queue[Ticket | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="pcopilot-generation", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def reserve(self, count: int) -> None:
        """Admits `count` generations before any work is done for them; each is then `submit`ted, or given back
        with `release`.

        Raises:
            RequestError: 429 when fewer than `count` of the `max_pending` slots are free.
        """
        with self._lock:
            if self._pending + count > self.max_pending:
                raise RequestError(
                    f"the server is busy: {self._pending} generations under way, {count} more asked for, the limit is "
                    f"{self.max_pending} (--max_concurrent_requests); retry shortly",
                    status=429,
                )
            self._pending += count

    def release(self, count: int = 1) -> None:
        with self._lock:
            self._pending -= count

    def submit(self, prepared: PreparedRequest, stream: bool = False) -> Ticket:
        """Queues a request on a slot taken with `reserve` (call from the event loop); close the ticket when its
        response is done, which frees the slot. With `stream`, its token events are delivered too."""
        ticket = Ticket(prepared, asyncio.get_running_loop(), self.release, stream)
        self._queue.put(ticket)
        return ticket

    def _next_batch(self) -> list[Ticket] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.perf_counter() + self.batch_window
        while len(batch) < self.max_batch_size:
            try:
                ticket = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if ticket is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(ticket)
        return [t for t in batch if not t.cancelled]

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            if batch:
                self._run(batch)

    def _run(self, batch: list[Ticket]) -> None:
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        try:
            results = self.engine.generate([t.prepared for t in batch], lambda i, event: batch[i].put(event))
        except Exception as error:
            logger.exception("generation failed for a batch of %d", len(batch))
            if len(batch) > 1:
                for ticket in batch:
                    if ticket.streamed:
                        self._fail(ticket, error)
                    else:
                        self._run([ticket])
            else:
                self._fail(batch[0], error)
            return
        now = time.perf_counter()
        for ticket, result in zip(batch, results, strict=True):
            result.seconds = now - ticket.queued_at
            self.stats.requests += 1
            self.stats.generated_tokens += result.generated_tokens
            ticket.put(result)

    def _fail(self, ticket: Ticket, error: Exception) -> None:
        self.stats.failed += 1
        ticket.put(GenerationFailed(f"generation failed: {type(error).__name__}: {error}"))


class ConcurrentScheduler(Scheduler):
    """The scheduler of an engine that batches by itself (`StreamingEngine`, e.g. vLLM behind `--engine`): the same
    admission (`reserve`, 429 beyond `max_pending`), but each request runs at once as its own task on the event loop,
    so the engine sees every request as it arrives. Closing a ticket cancels its task (which closes its connection to
    the engine, so the engine stops generating it)."""

    def __init__(self, engine: StreamingEngine, max_pending: int = 64) -> None:
        super().__init__(engine, max_batch_size=1, max_pending=max_pending)  # type: ignore[arg-type]
        self.streaming_engine = engine
        self._tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        """Nothing to start: requests run as tasks of the event loop."""

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def submit(self, prepared: PreparedRequest, stream: bool = False) -> Ticket:
        task: asyncio.Task | None = None

        def release() -> None:
            self.release()
            if task is not None:
                task.cancel()

        ticket = Ticket(prepared, asyncio.get_running_loop(), release, stream)
        task = asyncio.get_running_loop().create_task(self._run_one(ticket))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ticket

    async def _run_one(self, ticket: Ticket) -> None:
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, self._pending)
        try:
            async with contextlib.aclosing(
                self.streaming_engine.generate_one(ticket.prepared, ticket.stream)
            ) as items:
                async for item in items:
                    if isinstance(item, GenerationResult):
                        item.seconds = time.perf_counter() - ticket.queued_at
                        self.stats.requests += 1
                        self.stats.generated_tokens += item.generated_tokens
                    if not ticket.put(item):
                        return  # the client left: closing the items closes the engine's connection
        except GenerationFailed as error:
            self.stats.failed += 1
            logger.warning("%s", error)
            ticket.put(error)
        except Exception as error:
            logger.exception("generation failed")
            self._fail(ticket, error)
