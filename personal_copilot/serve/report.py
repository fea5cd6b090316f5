"""What `pcopilot serve` reports when it stops: where it served what, and the work it did."""

from __future__ import annotations

from dataclasses import dataclass, field

from personal_copilot.console import print_summary


@dataclass
class ServeReport:
    url: str
    model: str
    adapters: list[str] = field(default_factory=list)
    requests: int = 0
    """Generations completed."""
    failed: int = 0
    """Generations the engine failed on."""
    generated_tokens: int = 0
    batches: int = 0
    largest_batch: int = 0
    seconds: float = 0.0
    exit_code: int = 0

    def print(self) -> None:
        print_summary(
            "pcopilot serve",
            [
                ("served", self.url),
                ("model", self.model),
                ("adapters", ", ".join(self.adapters) or "-"),
                ("generations", self.requests),
                ("failed", self.failed),
                ("generated tokens", self.generated_tokens),
                ("batches (largest)", f"{self.batches:,} ({self.largest_batch})"),
                ("seconds up", self.seconds),
            ],
        )
