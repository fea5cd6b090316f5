"""The one path every route takes: prepare the requests (4xx before anything is queued), then queue them."""

from __future__ import annotations

from collections.abc import Sequence

from personal_copilot.serve.batching import Scheduler, Ticket
from personal_copilot.serve.generation import Engine, GenerationRequest, ModelInfo, RequestError


class CompletionService:
    """The engine and its scheduler, as the routes use them."""

    def __init__(self, engine: Engine, scheduler: Scheduler) -> None:
        self.engine = engine
        self.scheduler = scheduler

    @property
    def info(self) -> ModelInfo:
        return self.engine.info

    def start(self, requests: Sequence[GenerationRequest], stream: bool = False) -> list[Ticket]:
        """Prepares every request, then queues them all (or none); `stream` delivers their token events.

        Raises:
            RequestError: a request the engine refuses (404, 422) or a full queue (429).
        """
        prepared = [self.engine.prepare(request) for request in requests]
        tickets: list[Ticket] = []
        try:
            for item in prepared:
                tickets.append(self.scheduler.submit(item, stream))
        except RequestError:
            for ticket in tickets:
                ticket.close()
            raise
        return tickets
