"""What `pcopilot collect` tells: per source and in total, what was kept, dropped (by reason), deduplicated and
redacted."""

from __future__ import annotations

from dataclasses import dataclass, field

from personal_copilot.console import print_summary, print_table, stdout


@dataclass
class SourceReport:
    repo_id: str
    source: str
    status: str
    """`collected`, `unchanged` (same commit / files as last run), `carried` (from an earlier run, not named in this
    one), or `failed` (its earlier rows, if any, are kept)."""
    commit: str | None = None
    files_seen: int = 0
    files_kept: int = 0
    bytes_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    duplicates_exact: int = 0
    duplicates_near: int = 0
    secrets: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class CollectReport:
    output: str
    sources: list[SourceReport]
    files_seen: int
    files_kept: int
    bytes_kept: int
    dropped: dict[str, int]
    duplicates_exact: int
    duplicates_near: int
    secrets: dict[str, int]
    shards: list[str]
    seconds: float
    pushed_to: str | None = None

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "failed"]

    @property
    def exit_code(self) -> int:
        """1 when any source failed (the others were still collected), else 0."""
        return 1 if self.failed else 0

    def print(self) -> None:
        print_table(
            "Sources",
            ["repo_id", "status", "seen", "kept", "dropped", "duplicates", "secrets"],
            [
                (
                    s.repo_id,
                    s.status,
                    s.files_seen,
                    s.files_kept,
                    sum(s.dropped.values()),
                    s.duplicates_exact + s.duplicates_near,
                    sum(s.secrets.values()),
                )
                for s in self.sources
            ],
        )
        rows: list[tuple[str, object]] = [
            ("dataset", self.output),
            ("sources", f"{len(self.sources) - len(self.failed)} ok, {len(self.failed)} failed"),
            ("files seen", self.files_seen),
            ("files kept", self.files_kept),
            ("MB kept", self.bytes_kept / 1e6),
            *((f"dropped: {reason}", count) for reason, count in sorted(self.dropped.items())),
            ("duplicates: exact", self.duplicates_exact),
            ("duplicates: near", self.duplicates_near),
            *((f"secrets: {kind}", count) for kind, count in sorted(self.secrets.items())),
            ("shards", len(self.shards)),
            ("seconds", self.seconds),
        ]
        if self.pushed_to:
            rows.append(("pushed to", self.pushed_to))
        print_summary("pcopilot collect", rows)
        for source in self.failed:
            kept = " (its rows from an earlier run are kept)" if source.files_kept else ""
            stdout.print(f"[red]failed[/red] {source.source}: {source.error}{kept}", soft_wrap=True)
